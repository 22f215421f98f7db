# The rlscale controller image: `docker build -t rlscale:0.1.0 .` from the repository root.
# deploy/deployment.yaml runs it with the flags of `rlscale controller`.
#
# It carries the slim `rlscale-controller` binary only (crates/controller, feature `cli`): the
# controller, the runtime and the rule laws, without burn, plotters, tensorboard-rs or the test API
# server that the full `rlscale` CLI links (sizes and RSS of both: BENCHMARKS.md). Training,
# evaluation and the shadow report run from the `rlscale` CLI, outside the cluster.

# Build: Rust 1.95 or newer (the workspace's rust-version). Debian 12 (bookworm), to link against the
# glibc the runtime image has.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p rlscale-controller --features cli --bin rlscale-controller \
    && cp target/release/rlscale-controller /usr/local/bin/rlscale-controller

# Run: distroless (glibc, libgcc, CA certificates; no shell, no package manager) as the numeric
# nonroot user, so that runAsNonRoot can check it.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/rlscale-controller /usr/local/bin/rlscale-controller
# The shipped policy, where RLAutoscaler specs point (`model: /models/default.json`).
COPY models/default.json /models/default.json
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/rlscale-controller"]
