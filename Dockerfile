# One image, run as every role: `switchboard web`, `worker`, `migrate` (and later `smtp`, `bot`).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/switchboard
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN uv sync --frozen --no-dev && useradd --system --home /app switchboard && mkdir -p /app/data && chown switchboard /app/data
USER switchboard
ENV PATH=/opt/switchboard/bin:$PATH SWITCHBOARD_HTTP_HOST=0.0.0.0 SWITCHBOARD_DATA_DIR=/app/data
EXPOSE 8080
ENTRYPOINT ["switchboard"]
CMD ["web"]
