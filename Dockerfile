# The code location image of deploy/values.yaml: the gRPC server for bitbucket_assets.definitions, with
# dagster-postgres and dagster-k8s for deploy/dagster.yaml. tests/e2e/deploy/test_image.py replays the build
# stage's RUN steps and health-checks the server the CMD starts (no container engine runs in CI).

FROM python:3.11-slim AS build
# uv installs the environment: pip's resolver and installer took about 30 s of CPU for it, uv a few. The same
# version as pyproject.toml's dev extra, which the image test replays this stage with.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
WORKDIR /app
COPY pyproject.toml README.md workspace.yaml ./
COPY bitbucket_assets ./bitbucket_assets
COPY dbt_project ./dbt_project
RUN python -m venv /opt/venv
RUN uv pip install --no-cache --compile-bytecode --python /opt/venv/bin/python -e ".[production]"
# dagster-dbt reads dbt's manifest when the definitions load: parse at build time so it ships in the image.
RUN cd dbt_project && /opt/venv/bin/dbt parse --quiet --profiles-dir .

FROM python:3.11-slim
# ssh-keygen (openssh-client) checks approvals' and reviews' signatures, and signs the provisioning log's head
# and evidence packs (bitbucket_assets/signing.py).
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 dagster
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=dagster:dagster /app /app
WORKDIR /app
USER dagster
ENV PATH=/opt/venv/bin:$PATH DAGSTER_HOME=/home/dagster
EXPOSE 3030
HEALTHCHECK CMD ["dagster", "api", "grpc-health-check", "--port", "3030"]
CMD ["dagster", "api", "grpc", "--module-name", "bitbucket_assets.definitions", "--host", "0.0.0.0", "--port", "3030"]
