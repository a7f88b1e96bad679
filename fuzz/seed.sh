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

# Real-format seeds for the inspection targets, made by the tools the tests use when they are
# installed (the demo folder, if ./demo.sh ran, adds a labeled workbook and PDF).
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in inspect zip ole pdf archive crypto email msip; do mkdir -p "$corpus/$t"; done
printf 'CONFIDENTIAL\nfigures\n' > "$work/plain.txt"
demo="$fuzz_dir/../target/demo/tree"
if [ -d "$demo" ]; then
    find "$demo" -type f \( -name '*.xlsx' -o -name '*.docx' \) -exec cp {} "$corpus/zip/" \;
    find "$demo" -type f -name '*.pdf' -exec cp {} "$corpus/pdf/" \;
fi
if command -v zip >/dev/null; then
    (cd "$work" && zip -q -e -P secret enc.zip plain.txt && zip -q plain.zip plain.txt)
    cp "$work/enc.zip" "$work/plain.zip" "$corpus/zip/"
fi
if command -v 7z >/dev/null; then
    (cd "$work" && 7z a -bd -psecret -mhe=on enc.7z plain.txt >/dev/null && 7z a -bd plain.7z plain.txt >/dev/null)
    # The archive target's first byte picks the parser: 0 = 7z.
    for f in enc.7z plain.7z; do { printf '\000'; cat "$work/$f"; } > "$corpus/archive/$f"; done
fi
if command -v qpdf >/dev/null && [ -n "$(ls "$corpus/pdf" 2>/dev/null)" ]; then
    first=$(ls "$corpus/pdf" | head -n 1)
    qpdf --encrypt "" owner 256 -- "$corpus/pdf/$first" "$corpus/pdf/encrypted.pdf" || true
    qpdf --object-streams=generate "$corpus/pdf/$first" "$corpus/pdf/objstm.pdf" || true
fi
printf 'From: a@example.com\nmsip_labels: MSIP_Label_3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d_Enabled=True;\n MSIP_Label_3b2e8c11-7d4a-4f6b-9c0d-1e2f3a4b5c6d_SiteId=0b1c2d3e-0000-4000-8000-000000000001\nSubject: x\n\nbody\n' > "$corpus/email/labeled.eml"
printf '<clbl:labelList xmlns:clbl="http://schemas.microsoft.com/office/2020/mipLabelMetadata"><clbl:label id="{3B2E8C11-7D4A-4F6B-9C0D-1E2F3A4B5C6D}" enabled="1" method="Standard" siteId="{0b1c2d3e-0000-4000-8000-000000000001}" removed="0"/></clbl:labelList>' > "$corpus/msip/labelinfo.xml"
printf '\005password: ENC[AES256_GCM,data:abc=,iv:abc=,tag:abc=,type:str]\nsops:\n    mac: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n    lastmodified: "2026-01-01T00:00:00Z"\n    version: 3.8.1\n' > "$corpus/crypto/sops.yaml"
# The inspect target's first byte picks the file name (0 = a.docx); real bytes follow it.
for f in "$corpus/zip/"* "$corpus/pdf/"* "$corpus/email/"*; do
    [ -f "$f" ] && { printf '\000'; cat "$f"; } > "$corpus/inspect/$(basename "$f")"
done
echo "seeded inspection corpora"
