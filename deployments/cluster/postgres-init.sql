-- One database per service on the shared PostgreSQL (run once, when its data volume is first created).
CREATE DATABASE prefect;
CREATE DATABASE mlflow;
CREATE DATABASE mlflow_auth;
