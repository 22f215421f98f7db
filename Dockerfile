# The rlscale image (the controller; every other subcommand too): `docker build -t rlscale:0.1.0 .`
# from the repository root. deploy/deployment.yaml runs it as `rlscale controller ...`.

# Build: a release build of the `rlscale` binary. Rust 1.95 or newer: burn 0.22, a dependency of the
# CLI, needs it. Debian 12 (bookworm), to link against the glibc the runtime image has.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rlscale \
    && cp target/release/rlscale /usr/local/bin/rlscale

# Run: distroless (glibc, libgcc, CA certificates; no shell, no package manager) as the numeric
# nonroot user, so that runAsNonRoot can check it.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/rlscale /usr/local/bin/rlscale
# The shipped policy, where RLAutoscaler specs point (`model: /models/default.json`).
COPY models/default.json /models/default.json
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/rlscale"]
CMD ["controller"]
