# syntax=docker/dockerfile:1
# Build stage: compilers live here only; the final image gets the finished virtualenv.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream ./stream
RUN pip install --upgrade pip && pip install .

# Runtime stage: slim, non-root, no build tools.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin liqstream \
 && mkdir -p /var/lib/liqstream && chown liqstream:liqstream /var/lib/liqstream
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LIQSTREAM_DATA_DIR=/var/lib/liqstream
USER liqstream
WORKDIR /var/lib/liqstream
VOLUME ["/var/lib/liqstream"]
EXPOSE 6066 6067 9108
ENTRYPOINT ["liqstream"]
CMD ["--help"]
