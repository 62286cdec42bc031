# SPAI dashboard. CPU by default:
#   docker build -t spai-dashboard .
#   docker run -p 127.0.0.1:8501:8501 -e SPAI_ALLOW_UNAUTHENTICATED=1 \
#              -v $PWD/weights:/app/weights -v $PWD/data:/app/data spai-dashboard
# In a container it must listen on 0.0.0.0, so the same rule as outside applies (README,
# Security): it serves nothing unless sign-in is configured or it is started with
# SPAI_ALLOW_UNAUTHENTICATED=1, which says "everyone who reaches the published port may do
# everything"; publish it on 127.0.0.1 as above unless that is what you want. With sign-in
# (OpenID Connect), mount the secrets file with the [auth] section (never baked into the image:
# .dockerignore leaves it out) and name the administrators:
#   docker run -p 8501:8501 -v $PWD/.streamlit/secrets.toml:/app/.streamlit/secrets.toml:ro \
#              -e SPAI_ADMINS=you@lab.org -v $PWD/data:/app/data spai-dashboard
# Folders administrators may register from: SPAI_DATA_ROOTS (default: /app/data,
# /app/examples, /app/tests/fixtures).
# CUDA (needs the NVIDIA container toolkit on the host; torch wheels bundle the CUDA runtime):
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 \
#                --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu130 -t spai-dashboard:cuda .
#   docker run --gpus all -p 127.0.0.1:8501:8501 -e SPAI_ALLOW_UNAUTHENTICATED=1 spai-dashboard:cuda
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
RUN if ! command -v python3.11 >/dev/null; then \
      apt-get update && apt-get install -y --no-install-recommends software-properties-common && \
      add-apt-repository -y ppa:deadsnakes/ppa && apt-get update && \
      apt-get install -y --no-install-recommends python3.11 python3.11-venv && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /app
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt .
RUN pip install --index-url ${TORCH_INDEX} torch==2.14.1 torchvision==0.29.1 && \
    pip install -r requirements.txt
COPY . .
RUN pip install --no-deps -e .
RUN useradd --create-home spai && mkdir -p /app/data && chown -R spai /app/data
USER spai
EXPOSE 8501
# Inside a container the server must listen on all interfaces to be reachable through -p;
# outside Docker, .streamlit/config.toml binds 127.0.0.1. Without sign-in or
# SPAI_ALLOW_UNAUTHENTICATED=1 every page refuses to serve (dashboard/access.py): no exposure
# without authentication by default.
CMD ["streamlit", "run", "dashboard/app.py", "--server.address", "0.0.0.0", "--server.port", "8501"]
