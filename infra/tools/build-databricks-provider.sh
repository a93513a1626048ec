#!/usr/bin/env bash
# Build the Databricks Terraform provider (github.com/databricks/terraform-provider-databricks, Apache-2.0)
# from the Go module proxy, once, and cache it; prints the folder to name in a Terraform CLI configuration's
# `dev_overrides` (tests/test_infra.py does). The registry that `terraform init` would download it from is
# not reachable here; infra/README.md says which providers could not be built and why.
#
#   bash infra/tools/build-databricks-provider.sh
set -euo pipefail
VERSION=${DATABRICKS_PROVIDER_VERSION:-v1.84.0}  # the newest release the module proxy serves here; infra/ needs ~> 1.60
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/dbxml-terraform-provider-databricks-$VERSION
BIN=$CACHE/terraform-provider-databricks
if [ -x "$BIN" ]; then echo "$CACHE"; exit 0; fi
mkdir -p "$CACHE/wrap"
cd "$CACHE/wrap"
export GOPATH=$CACHE/gopath GOMODCACHE=$CACHE/gopath/pkg/mod
# a throwaway module that requires the provider, so that `go build` builds it at exactly $VERSION
printf 'module providerbuild\n\ngo 1.24\n\nrequire github.com/databricks/terraform-provider-databricks %s\n' "$VERSION" > go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/databricks/terraform-provider-databricks"\n' > tools.go
GOFLAGS="-mod=mod -p=1 -buildvcs=false" nice -n 10 go build -o "$BIN.tmp" github.com/databricks/terraform-provider-databricks >&2
mv "$BIN.tmp" "$BIN"
chmod -R u+w "$GOPATH" 2>/dev/null && rm -rf "$GOPATH"  # the module cache is large; the binary is all we keep
echo "$CACHE"
