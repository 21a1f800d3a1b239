# A small static picklescan-rs image: built against musl on Alpine, run on distroless (no shell,
# no package manager; CA certificates for remote scans, /tmp for serve's uploads, a non-root
# user). Build: docker build -t picklescan-rs .
# Scan a folder: docker run --rm -v "$PWD:/scan:ro" picklescan-rs .
FROM rust:1.89-alpine AS build
# ring (TLS for remote scans) compiles C and assembly.
RUN apk add --no-cache musl-dev gcc
WORKDIR /src
COPY . .
# Alpine's Rust targets musl and links statically by default.
RUN cargo build --locked --release --bin picklescan-rs \
    && strip target/release/picklescan-rs \
    && ldd target/release/picklescan-rs 2>&1 | grep -q -e 'not a dynamic executable' -e 'statically linked'

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /src/target/release/picklescan-rs /usr/local/bin/picklescan-rs
WORKDIR /scan
ENTRYPOINT ["/usr/local/bin/picklescan-rs"]
CMD ["--help"]
