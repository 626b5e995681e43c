# The image the Docker and Kubernetes work pools run (deployments/work-pools/), and the MLflow server's
# (deployments/cluster/docker-compose.yml). Flow runs use the image's own copy of the code in /app: deploy with
# `adaptflow-deploy --pool POOL --image adaptflow:latest` (no pull step, nothing from the deploying machine).
#   docker build -t adaptflow:latest .                                             # CPU torch
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t adaptflow:gpu .   # CUDA torch
# The GPU image runs on a host with the NVIDIA driver and container toolkit (docker run --gpus all; in Kubernetes a
# nvidia.com/gpu resource limit); torch's CUDA wheels carry the CUDA runtime, so the base image stays the same.
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0
COPY pyproject.toml constraints.txt README.md ./
COPY tasks tasks
COPY flows flows
COPY deployments deployments
COPY data data
COPY params.yaml dvc.yaml ./
RUN pip install -c constraints.txt ".[server]"
CMD ["adaptflow", "run"]
