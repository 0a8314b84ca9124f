FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .
# The Worker Deployment build id this image polls as (compose passes the image tag).
ARG D2R_BUILD_ID=dev
ENV D2R_BUILD_ID=${D2R_BUILD_ID}
USER nobody
