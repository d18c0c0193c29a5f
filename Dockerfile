# One image for every Civility process: api, worker and webhooks differ only by command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    CIVILITY_INSTANCE_PATH=/data
WORKDIR /app

# The CPU build of torch, pinned: the default index would bring a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

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
