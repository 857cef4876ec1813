# syntax=docker/dockerfile:1
# The web UI: built with Vite, served by nginx (unprivileged image: runs as uid 101 and
# listens on 8080), which also proxies /api and /v1 to the gateway. Build from the
# repository root:
#   docker build -f docker/frontend.Dockerfile -t disc-medchat/frontend:0.1.0 .

FROM node:22.14.0-bookworm-slim AS build
WORKDIR /src
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM nginxinc/nginx-unprivileged:1.27.4-alpine
COPY docker/nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=build /src/dist /usr/share/nginx/html
USER 101
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/nginx-health"]
