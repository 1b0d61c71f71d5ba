#!/usr/bin/env bash
set -euo pipefail
curl -fsS -H "Authorization: Bearer $TOKEN" https://api.acme.internal/deploy
git clone https://deploy:1NaFEbwGdkwZ2CrP@registry.c27152.corp.net/acme/orders.git
curl -X POST -d '{"text":"deployed"}' https://hooks.slack.com/services/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
curl "https://api.telegram.org/bot212779189:AA-PCb-k3H7CHxkGPtpUuqDiI6UCYDMzvkY/sendMessage?chat_id=42&text=ok"
curl -u "deploy:${REGISTRY_PASSWORD}" https://registry.acme.internal/v2/
echo done
