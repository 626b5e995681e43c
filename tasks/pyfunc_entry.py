"""The MLflow "model from code" entry point: MLflow runs this file to build the pyfunc model (no pickle)."""

from mlflow.models import set_model

from tasks.serving import TextClassifier

set_model(TextClassifier())
