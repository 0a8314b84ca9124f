#!/bin/sh
# One-shot: wait for the cluster, create the namespace if missing, register d2r's search
# attributes (same names and types as contracts/search_attributes.py; re-running is harmless).
set -eu
ns="${DEFAULT_NAMESPACE:-default}"
attempt=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  attempt=$((attempt + 1)); [ "$attempt" -gt 60 ] && { echo "temporal not healthy" >&2; exit 1; }; sleep 2
done
temporal operator namespace describe --namespace "$ns" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$ns" --address "$TEMPORAL_ADDRESS"
temporal operator search-attribute create --namespace "$ns" --address "$TEMPORAL_ADDRESS" \
  --name D2ROpportunityId --type Keyword --name D2RCustomerId --type Keyword \
  --name D2RProjectId --type Keyword --name D2RContractId --type Keyword \
  --name D2RLegalEntity --type Keyword --name D2RStage --type Keyword \
  --name D2RBillingModels --type KeywordList --name D2RPendingApproval --type Bool
