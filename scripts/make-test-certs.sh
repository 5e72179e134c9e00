#!/usr/bin/env bash
# Makes a throw-away test CA and a certificate it signed for localhost and 127.0.0.1, with
# openssl, in the directory given (created if missing): ca.pem, leaf.pem, leaf.key. Every
# test suite's TLS tests (Rust, Python, Node, C) use it, so they trust and serve the same way.
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > leaf.ext
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=iii test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj "/CN=localhost" 2>/dev/null
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem \
  -days 2 -extfile leaf.ext 2>/dev/null
