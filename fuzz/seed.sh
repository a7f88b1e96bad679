#!/bin/sh
# Seeds fuzz/corpus/<target>/ with the shipped examples so the fuzzers start from valid input.
# Run from anywhere; it is idempotent (existing corpus files are kept).
set -eu

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
examples="$fuzz_dir/../policies/examples"
corpus="$fuzz_dir/corpus"

mkdir -p "$corpus/marking" "$corpus/policy_toml" "$corpus/ledger"

cp "$examples/policy.toml" "$corpus/policy_toml/example-policy.toml"
cp "$examples/ledger.toml" "$corpus/ledger/example-ledger.toml"

# The same assets as CSV: the header names the TOML keys, list cells separate items with `;`.
cat > "$corpus/ledger/example-ledger.csv" <<'CSV'
id,name,department,administrator,label,locations,hosts,members,encryption,access_until,disclosure
ACME-2026,ACME migration,Finance Systems,alice@example.com,confidential,/srv/projects/acme/**,build-*;ws-alice,user:alice;group:acme,required,2026-12-31,ACME project members only
HR-PERSONNEL,Personnel files,Human Resources,hr-records@example.com,secret,/srv/vault/hr/**,hr-fs-*,group:hr,,,"HR staff only; works council on request"
CSV

# Text heads with banners on different lines, a multi-byte banner, and a binary (zip) head.
printf 'CONFIDENTIAL\nquarterly numbers\n' > "$corpus/marking/banner-first-line.txt"
printf 'Title\n\n-- STRICTLY CONFIDENTIAL --\nINTERNAL USE ONLY\n' > "$corpus/marking/multi-word.txt"
printf 'Bericht\nSTRENG GEHEIM\n機密 資料\nCONFIDENTIEL – DIFFUSION RESTREINTE\n' > "$corpus/marking/multi-byte.txt"
printf 'NONCONFIDENTIAL SECRETS\n' > "$corpus/marking/not-whole-words.txt"
printf 'PK\003\004\024\000\000\000CONFIDENTIAL' > "$corpus/marking/zip-head.bin"

echo "seeded $corpus"
