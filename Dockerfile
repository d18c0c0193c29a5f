# One image for every Civility process: api, worker and webhooks differ only by command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    CIVILITY_INSTANCE_PATH=/data
WORKDIR /app

# The CPU build of torch (PyTorch's CPU index; the ordinary index if that does not answer).
# docker build --build-arg CIVILITY_TORCH=cuda . for the GPU build.
ARG CIVILITY_TORCH=cpu
ARG CIVILITY_TORCH_INDEX=
COPY scripts/install-torch ./scripts/
RUN CIVILITY_TORCH=$CIVILITY_TORCH CIVILITY_TORCH_INDEX=$CIVILITY_TORCH_INDEX \
    PYTHON=python scripts/install-torch

COPY pyproject.toml README.md ./
COPY service ./service
COPY workers ./workers
RUN pip install ".[worker]" && useradd --create-home civility && mkdir /data \
    && chown civility /data
USER civility
VOLUME /data
EXPOSE 8000

ENTRYPOINT ["civility"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
