#!/usr/bin/env bash
# Build a Terraform provider that infra/ uses from the Go module proxy, once, and cache it; print the folder to
# name in a Terraform CLI configuration's `dev_overrides` (tests/test_infra.py does). The registry that
# `terraform init` would download providers from is not reachable here; infra/README.md says which providers
# the proxy serves, what each build costs, and which cannot be built.
#
#   bash infra/tools/build-provider.sh databricks    # about 2 min, 0.9 GB of memory
#   bash infra/tools/build-provider.sh azurerm       # about 35 min, 4.8 GB of memory
#   bash infra/tools/build-provider.sh azurerm --cached   # the folder if built before, else exit 1 (no build)
set -euo pipefail
case "${1:-}" in
  # the newest release the proxy serves here (infra/ asks for ~> 1.60)
  databricks) MODULE=github.com/databricks/terraform-provider-databricks VERSION=v1.84.0 ;;
  # the proxy serves no 4.x release (the module path has no /v4), only this untagged commit of August 2026
  azurerm) MODULE=github.com/hashicorp/terraform-provider-azurerm VERSION=v1.44.1-0.20260824201233-fae580791926 ;;
  *) echo "usage: build-provider.sh databricks|azurerm (azuread and github are not served: infra/README.md)" >&2
     exit 2 ;;
esac
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/dbxml-terraform-provider-$1-$VERSION
BIN=$CACHE/terraform-provider-$1
if [ -x "$BIN" ]; then echo "$CACHE"; exit 0; fi
if [ "${2:-}" = "--cached" ]; then exit 1; fi
mkdir -p "$CACHE/wrap"
cd "$CACHE/wrap"
export GOPATH=$CACHE/gopath GOMODCACHE=$CACHE/gopath/pkg/mod
# a throwaway module that requires the provider, so that `go build` builds exactly $VERSION
printf 'module providerbuild\n\ngo 1.24\n\nrequire %s %s\n' "$MODULE" "$VERSION" > go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$MODULE" > tools.go
GOFLAGS="-mod=mod -p=1 -buildvcs=false" nice -n 10 go build -o "$BIN.tmp" "$MODULE" >&2
mv "$BIN.tmp" "$BIN"
chmod -R u+w "$GOPATH" 2>/dev/null && rm -rf "$GOPATH"  # the module cache is large; the binary is all we keep
echo "$CACHE"
