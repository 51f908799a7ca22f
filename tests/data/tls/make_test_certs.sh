#!/usr/bin/env bash
# Creates a throw-away CA, a server certificate (localhost / 127.0.0.1) and a client certificate
# signed by it, for the TLS and mutual-TLS tests. Usage: make_test_certs.sh OUT_DIR
# Writes OUT_DIR/{ca.pem,ca.key,server.pem,server.key,client.pem,client.key,other-ca.pem}
# (other-ca.pem: an unrelated CA, for negative tests). EC P-256 keys, valid for 2 days.
set -euo pipefail
out="$1"
mkdir -p "$out"
cd "$out"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=tlcm test CA" 2>/dev/null
openssl req -x509 "${ec[@]}" -keyout other-ca.key -out other-ca.pem -days 2 \
  -subj "/CN=tlcm other CA" 2>/dev/null

openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null

openssl req "${ec[@]}" -keyout client.key -out client.csr -subj "/CN=tlcm test client" 2>/dev/null
printf "extendedKeyUsage=clientAuth\n" > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile client.ext -out client.pem 2>/dev/null
rm -f ./*.csr ./*.ext ./*.srl
