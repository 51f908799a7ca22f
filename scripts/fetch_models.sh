#!/usr/bin/env bash
# Downloads the TLCM base models and LoRA adapters from Hugging Face into one folder and writes a
# matching tlcm-server configuration (text-format tlcm.v1.ServerConfig) next to them.
#
# Usage: scripts/fetch_models.sh [--dest DIR] [--models sdxl,flux] [--config FILE]
#                                [--path-prefix DIR] [--devices LIST] [--no-vae-fix] [--force]
#                                [--lock FILE [--record-checksums]]
#   --dest DIR         where the model folders go (default: models)
#   --models LIST      comma-separated families to fetch: sdxl, flux (default: sdxl)
#   --config FILE      configuration to write (default: DIR/server.textproto). "-" = stdout.
#   --path-prefix DIR  write model paths as DIR/<folder> (e.g. /models, where the folder is
#                      mounted in the server's container). Default: paths relative to the
#                      configuration file, which the server resolves against the file's folder
#                      (only right when the configuration stays inside --dest).
#   --devices LIST     comma-separated devices for the configuration (default: all)
#   --no-vae-fix       SDXL: keep the base VAE instead of madebyollin/sdxl-vae-fp16-fix (the base
#                      VAE overflows in fp16; without the fix use dtype fp32 or bf16)
#   --force            download again even when a folder is marked complete
#   --lock FILE        pin every folder: download the commit its `revision` line names and check
#                      each file against its sha256 line afterwards (format below). A folder
#                      without a revision line, or (unless --record-checksums) without checksums,
#                      is an error; so is a file whose sha256 differs.
#   --record-checksums with --lock: after downloading a folder, replace its sha256 lines in FILE
#                      with the checksums of the files just downloaded (how a lock is made: write
#                      the revision lines, run once with this flag, review and commit the result)
#
# Lock file (--lock): `#` comments, blank lines, and two kinds of lines:
#   revision FOLDER COMMIT       the 40-hex git commit of the folder's repository to download
#   SHA256  FOLDER/PATH          a file's checksum, in the format of `sha256sum` (two spaces)
# Environment: HF_TOKEN (required for FLUX.1-dev, a gated repository: accept its licence on
# huggingface.co with the token's account first), HF_HOME (download cache; default ~/.cache/
# huggingface), HF_CLI (the command to run, default `huggingface-cli`, else
# `python3 -m huggingface_hub.commands.huggingface_cli`). Needs huggingface_hub[cli] 0.2x-0.3x;
# docker/fetch-requirements.txt pins one with hashes (docker/Dockerfile.fetch, the chart's download
# Job, installs exactly that):
#   pip install --require-hashes -r docker/fetch-requirements.txt
#
# Layout written under --dest (folder names are what the configuration refers to):
#   sdxl-base/  stabilityai/stable-diffusion-xl-base-1.0 (fp16 weight variant only, ~7 GB)
#   sdxl-vae-fp16-fix/  madebyollin/sdxl-vae-fp16-fix
#   tlcm-sdxl-lora/     OPPOer/TLCMSDXL
#   flux-dev/   black-forest-labs/FLUX.1-dev (diffusers folders only, ~34 GB)
#   tlcm-flux-lora/     OPPOer/TLCMFlux
# Each finished folder gets a `.tlcm-complete` marker holding the digest of its lock lines
# ("unpinned" without --lock); later runs skip a folder whose marker matches (so a restarted
# download Job does not download again, and a changed pin downloads the folder again) unless
# --force.
set -euo pipefail

dest=models
families=sdxl
config=""
prefix=""
devices=all
vae_fix=1
force=0
lock=""
record=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest="$2"; shift 2 ;;
    --models) families="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --path-prefix) prefix="$2"; shift 2 ;;
    --devices) devices="$2"; shift 2 ;;
    --no-vae-fix) vae_fix=0; shift ;;
    --force) force=1; shift ;;
    --lock) lock="$2"; shift 2 ;;
    --record-checksums) record=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch_models.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$config" ] || config="$dest/server.textproto"
if [ "$record" = 1 ] && [ -z "$lock" ]; then
  echo "fetch_models.sh: --record-checksums needs --lock FILE" >&2; exit 2
fi
if [ -n "$lock" ] && [ ! -f "$lock" ]; then
  echo "fetch_models.sh: --lock: $lock does not exist" >&2; exit 2
fi

want_sdxl=0; want_flux=0
IFS=',' read -r -a family_list <<< "$families"
for f in "${family_list[@]}"; do
  case "$f" in
    sdxl) want_sdxl=1 ;;
    flux) want_flux=1 ;;
    *) echo "fetch_models.sh: --models: unknown family '$f' (sdxl, flux)" >&2; exit 2 ;;
  esac
done
if [ "$want_flux" = 1 ] && [ -z "${HF_TOKEN:-}" ]; then
  echo "fetch_models.sh: FLUX.1-dev is gated: set HF_TOKEN to a token whose account accepted" \
       "its licence" >&2
  exit 2
fi

if [ -n "${HF_CLI:-}" ]; then
  read -r -a cli <<< "$HF_CLI"
elif command -v huggingface-cli > /dev/null; then
  cli=(huggingface-cli)
else
  cli=(python3 -m huggingface_hub.commands.huggingface_cli)
fi

mkdir -p "$dest"

# The awk test of a checksum line of folder f (mawk has no {64} intervals).
is_sum='length($1) == 64 && $1 ~ /^[0-9a-f]+$/ && index($2, f "/") == 1'

# lock_lines FOLDER: the lock's revision and checksum lines of FOLDER.
lock_lines() {
  awk -v f="$1" '($1 == "revision" && $2 == f) || ('"$is_sum"')' "$lock"
}

# record_checksums FOLDER: replaces FOLDER's checksum lines in the lock with the files on disk.
record_checksums() {
  local folder="$1"
  {
    awk -v f="$folder" '!('"$is_sum"')' "$lock"
    (cd "$dest" && find "$folder" -type f ! -path "$folder/.cache/*" ! -name .tlcm-complete \
        -print0 | sort -z | xargs -0 sha256sum)
  } > "$lock.tmp"
  mv "$lock.tmp" "$lock"
  echo "fetch_models.sh: recorded the checksums of $folder in $lock" >&2
}

# fetch REPO FOLDER [--include PATTERN...]: one repository into $dest/FOLDER.
fetch() {
  local repo="$1" folder="$2"; shift 2
  local target="$dest/$folder" digest=unpinned revision=() lines=""
  if [ -n "$lock" ]; then
    lines="$(lock_lines "$folder")"
    local commit
    commit="$(awk '$1 == "revision" { print $3 }' <<< "$lines")"
    if ! [[ "$commit" =~ ^[0-9a-f]{40}$ ]]; then
      echo "fetch_models.sh: $lock has no \"revision $folder <40-hex commit>\" line for $repo" >&2
      exit 2
    fi
    if [ "$record" = 0 ] && ! grep -q '^[0-9a-f]\{64\} ' <<< "$lines"; then
      echo "fetch_models.sh: $lock has no checksums for $folder (make them with" \
           "--record-checksums on a trusted download)" >&2
      exit 2
    fi
    revision=(--revision "$commit")
    digest="$(sort <<< "$lines" | sha256sum | cut -c1-64)"
  fi
  if [ "$force" = 0 ] && [ -f "$target/.tlcm-complete" ] \
     && { [ -z "$lock" ] || [ "$(cat "$target/.tlcm-complete")" = "$digest" ]; }; then
    echo "fetch_models.sh: $repo: $target is complete, skipped" >&2
    return
  fi
  echo "fetch_models.sh: $repo ${revision[*]} -> $target" >&2
  mkdir -p "$target"
  rm -f "$target/.tlcm-complete"
  # The token is read from HF_TOKEN by the CLI itself (never put on the command line).
  "${cli[@]}" download "$repo" "${revision[@]}" --local-dir "$target" "$@"
  if [ "$record" = 1 ]; then
    record_checksums "$folder"
    digest="$(lock_lines "$folder" | sort | sha256sum | cut -c1-64)"
  elif [ -n "$lock" ]; then
    if ! (cd "$dest" && grep '^[0-9a-f]\{64\} ' <<< "$lines" | sha256sum --check --strict --quiet); then
      echo "fetch_models.sh: $target does not match the checksums of $lock" >&2
      exit 1
    fi
    echo "fetch_models.sh: $target matches the checksums of $lock" >&2
  fi
  echo "$digest" > "$target/.tlcm-complete"
}

if [ "$want_sdxl" = 1 ]; then
  # The fp16 variant only (diffusion_pytorch_model.fp16.safetensors, model.fp16.safetensors).
  fetch stabilityai/stable-diffusion-xl-base-1.0 sdxl-base --include "model_index.json" \
      "*/config.json" "scheduler/*" "tokenizer/*" "tokenizer_2/*" "*.fp16.safetensors"
  fetch OPPOer/TLCMSDXL tlcm-sdxl-lora
  if [ "$vae_fix" = 1 ]; then
    fetch madebyollin/sdxl-vae-fp16-fix sdxl-vae-fp16-fix --include "config.json" \
        "diffusion_pytorch_model.safetensors"
  fi
fi
if [ "$want_flux" = 1 ]; then
  # The diffusers folders only, not the single-file flux1-dev.safetensors / ae.safetensors.
  fetch black-forest-labs/FLUX.1-dev flux-dev --include "model_index.json" "scheduler/*" \
      "tokenizer/*" "tokenizer_2/*" "text_encoder/*" "text_encoder_2/*" "transformer/*" "vae/*"
  fetch OPPOer/TLCMFlux tlcm-flux-lora
fi

# path FOLDER: how the configuration names $dest/FOLDER.
path() {
  if [ -n "$prefix" ]; then echo "${prefix%/}/$1"; else echo "$1"; fi
}

write_config() {
  echo "# proto-file: proto/tlcm/v1/server_config.proto"
  echo "# proto-message: tlcm.v1.ServerConfig"
  echo "# Written by scripts/fetch_models.sh on $(date -u +%Y-%m-%d). Field meanings: docs/server.md."
  echo "port: 50051"
  echo "metrics_port: 9464"
  IFS=',' read -r -a device_list <<< "$devices"
  for d in "${device_list[@]}"; do echo "devices: \"$d\""; done
  echo "drain_grace_seconds: 30"
  if [ "$want_sdxl" = 1 ]; then
    echo ""
    echo "models {"
    echo "  name: \"sdxl-tlcm\""
    echo "  base_model_path: \"$(path sdxl-base)\""
    echo "  lora_path: \"$(path tlcm-sdxl-lora)\""
    echo "  variant: \"fp16\""
    if [ "$vae_fix" = 1 ]; then
      echo "  vae_path: \"$(path sdxl-vae-fp16-fix)\""
      echo "  dtype: \"fp16\""
    else
      echo "  dtype: \"bf16\"  # the base VAE overflows in fp16"
    fi
    echo "  max_batch_size: 4"
    echo "  max_queue_delay_ms: 20"
    echo "  max_queue_size: 64"
    echo "}"
  fi
  if [ "$want_flux" = 1 ]; then
    echo ""
    echo "models {"
    echo "  name: \"flux-tlcm\""
    echo "  base_model_path: \"$(path flux-dev)\""
    echo "  lora_path: \"$(path tlcm-flux-lora)\""
    echo "  dtype: \"bf16\""
    echo "  max_batch_size: 2"
    echo "  max_queue_delay_ms: 20"
    echo "  max_queue_size: 32"
    echo "}"
  fi
}

if [ "$config" = "-" ]; then
  write_config
else
  mkdir -p "$(dirname "$config")"
  write_config > "$config.tmp"
  mv "$config.tmp" "$config"
  echo "fetch_models.sh: wrote $config" >&2
fi
