# syntax=docker/dockerfile:1.7
# container-native-db tools image: PostgreSQL (the master's major) + Node 20 + this package's run-time
# (`cndb`) + kubectl, running as uid/gid 999. One image, three uses: the bake Job/CronJob, the base of
# every snapshot image (the bake adds one layer with /var/lib/cndb/snapshot), and therefore the reader
# and read-API containers of the fleet.
#
# Build context: the package root, sources only; the run-time is compiled in the build stage, so no
# prior `npm run build` is needed. The context admits package*.json, tsconfig.json, tsconfig.image.json,
# common/ and runtime/ (tools.Dockerfile.dockerignore; components/tools-image.ts hashes the same set).
#   docker buildx build -f images/tools.Dockerfile --build-arg PG_MAJOR=16 .

ARG PG_MAJOR=16
# Debian-based postgres image of the same major; pin by digest in production (config images.postgresBaseImage).
ARG BASE_IMAGE=postgres:${PG_MAJOR}-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS node

# kubectl for promotion (kubectl set image on the fleet Deployment), checked against the published SHA-256.
FROM debian:bookworm-slim AS kubectl
ARG KUBECTL_VERSION=1.33.4
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN curl -fsSLo /kubectl "https://dl.k8s.io/release/v${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl" \
 && echo "$(curl -fsSL "https://dl.k8s.io/release/v${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl.sha256")  /kubectl" | sha256sum -c - \
 && chmod 0755 /kubectl

# Compile the run-time (runtime/ + common/ only: tsconfig.image.json) to /app/bin. Plain JavaScript, so
# it runs on the build host's platform (no emulation when building linux/arm64 on amd64).
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /app
# The lock pins the compiler and type packages (npm ci). An installed copy of this package has no lock
# (npm never publishes one), so there the newest versions within package.json's ranges are used.
COPY package.json package-lock.json* ./
RUN if [ -f package-lock.json ]; then npm ci --ignore-scripts --no-audit --no-fund; \
    else npm install --ignore-scripts --no-audit --no-fund; fi
COPY tsconfig.json tsconfig.image.json ./
COPY common/ ./common/
COPY runtime/ ./runtime/
RUN ./node_modules/.bin/tsc -p tsconfig.image.json \
 && test -f bin/runtime/cli.js

# Production dependencies of the run-time only. The @pulumi/* packages are deploy-time dependencies of
# this package (the components); the run-time never loads them, so they stay out of every image.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json* ./
RUN node -e 'const f="package.json",p=require("./"+f);for(const d of Object.keys(p.dependencies||{}))if(d.startsWith("@pulumi/"))delete p.dependencies[d];delete p.devDependencies;require("fs").writeFileSync(f,JSON.stringify(p,null,2))' \
 && npm install --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

FROM ${BASE_IMAGE}
ARG PG_MAJOR
# Fail the build if the base image isn't the PostgreSQL major the master runs (pg_dump must match).
RUN test -x "/usr/lib/postgresql/${PG_MAJOR}/bin/postgres" \
 || { echo "base image has no PostgreSQL ${PG_MAJOR} in /usr/lib/postgresql/${PG_MAJOR}/bin" >&2; exit 1; }
# tini as PID 1: forwards SIGTERM to cndb and reaps PostgreSQL's children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=kubectl /kubectl /usr/local/bin/kubectl
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/package.json ./package.json
COPY --from=build /app/bin ./bin
ENV NODE_ENV=production \
    CNDB_PG_BIN=/usr/lib/postgresql/${PG_MAJOR}/bin \
    PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}
# 999 is the postgres account of the base image (common/contract.ts RUNTIME_UID). The snapshot layer
# adds /var/lib/cndb/snapshot; the socket directory is an emptyDir in the pod.
RUN test "$(id -u postgres):$(id -g postgres)" = "999:999" \
 && install -d -o 999 -g 999 -m 0750 /var/lib/cndb \
 && install -d -o 999 -g 999 -m 0770 /var/run/cndb \
 && node /app/bin/runtime/cli.js --help > /dev/null
USER 999:999
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/runtime/cli.js"]
