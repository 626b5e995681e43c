# The image the Docker and Kubernetes work pools run (deployments/work-pools/), and the MLflow server's.
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml constraints.txt README.md ./
COPY tasks tasks
COPY flows flows
COPY deployments deployments
COPY data data
COPY params.yaml dvc.yaml ./
RUN pip install -c constraints.txt . && pip install -c constraints.txt boto3 psycopg2-binary
CMD ["adaptflow", "run"]
