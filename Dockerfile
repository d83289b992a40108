# One image for every role: `mtrelay <role> [flags]` are its arguments (relay, deliverer,
# standalone, operator). The build stage installs the dependencies and bundles the code with
# esbuild; the runtime image holds Node.js and that bundle, nothing else: no shell, no npm, no
# node_modules. Bases are arguments so that builds without a registry can bring their own of
# the same shape (the tests do).
ARG BUILD_BASE=docker.io/library/node:24-bookworm-slim
ARG RUNTIME_BASE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM ${BUILD_BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: nothing the bundle needs runs one, and none should run at build time.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY cli.ts tsconfig.json ./
COPY shared ./shared
COPY relay ./relay
COPY deliverer ./deliverer
COPY standalone ./standalone
COPY operator ./operator
COPY tracker ./tracker
COPY dispatcher ./dispatcher
COPY inbound ./inbound
COPY api ./api
RUN npm run bundle

FROM ${RUNTIME_BASE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="mtrelay" \
      org.opencontainers.image.description="Kubernetes-native SMTP relay: submission, delivery, operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /src/dist /app
# Every write goes to a volume: the root filesystem can be read-only. Standalone mode keeps its
# queue, keys and certificate in /var/lib/mtrelay; temporary files go to /tmp.
ENV NODE_ENV=production MTRELAY_STATE=/var/lib/mtrelay
VOLUME ["/var/lib/mtrelay", "/tmp"]
WORKDIR /var/lib/mtrelay
# A numeric user (distroless' nonroot), so runAsNonRoot can check it without an /etc/passwd lookup.
USER 65532:65532
EXPOSE 587 465 2525 9090
# node is PID 1: mtrelay installs its SIGTERM handler before anything else, so a stop drains.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/nodejs/bin/node", "--enable-source-maps", "/app/mtrelay.mjs"]
CMD ["--help"]
