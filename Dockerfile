# syntax=docker/dockerfile:1
# tabby image: tabby-node (agent, BGP speaker, install-cni), the CNI plugins and tabbyctl.
#   docker build -t tabby/tabby:0.1.0 .
# Manifests: deploy/tabby.yaml (scripts/gen-manifests.ts --image <ref> for another tag).

# ---- build: full dev toolchain, esbuild bundles into dist/bin, then drop dev dependencies ----
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: slim Debian with node, plus the tools tabby-node shells out to ----
# containernetworking-plugins: portmap/loopback (/usr/lib/cni) for hosts that have none.
# socat: the `tabby` CNI shim's client of tabby-node's CNI server; install-cni copies it for hosts without one.
FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables ca-certificates containernetworking-plugins socat \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tabby
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
# install-cni copies the bundles (and this node binary) from here onto the host.
ENV TABBY_APP_DIR=/opt/tabby \
    PATH=/opt/tabby/bin:$PATH \
    NODE_ENV=production
# tabby-node programs routes, links, sysctls and nftables in the host network namespace and
# writes into host paths (/opt/cni/bin, /etc/cni/net.d): that takes root (with the pod running
# privileged, as calico-node does). tabbyctl needs no privileges; run it with --user 65534 if
# you use this image for it.
USER root
ENTRYPOINT ["tabby-node"]
