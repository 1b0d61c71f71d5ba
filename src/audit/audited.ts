import type { IssuanceLog, IssuanceRecord } from '../ca/issuance-log.js'
import { isTesseraError } from '../errors.js'
import type { TokenExchange } from '../exchange/token-exchange.js'
import type { AuditEventInput, EventSink } from './event-sink.js'

/**
 * Issuance events from the CA's batched issuance log: each `record` call writes its issuance rows
 * and its `issuance.x509` / `issuance.jwt` events side by side, both batched (group commit), and
 * resolves when both are durable, so the signing path pays one more batched write, not one per SVID.
 */
export function withIssuanceEvents(inner: IssuanceLog, events: EventSink): IssuanceLog {
  return {
    async record(records) {
      await Promise.all([inner.record(records), events.appendMany(records.map(issuanceEvent))])
    },
  }
}

function issuanceEvent(r: IssuanceRecord): AuditEventInput {
  return {
    type: r.svidType === 'x509' ? 'issuance.x509' : 'issuance.jwt',
    actor: r.agentId ? `agent:${r.agentId}` : 'ca',
    subject: r.spiffeId,
    ...(r.entryId ? { resource: `entry:${r.entryId}` } : {}),
    action: 'issue',
    at: r.issuedAt,
    data: {
      ...(r.serial ? { serial: r.serial } : {}),
      ...(r.jti ? { jti: r.jti } : {}),
      notBefore: r.notBefore,
      notAfter: r.notAfter,
      ...(r.publicKeyHash ? { publicKeyHash: r.publicKeyHash } : {}),
    },
  }
}

/**
 * Token exchange with a `token.exchange` event per call: who presented what (SPIFFE IDs, the
 * delegation chain, scope, audience, intent, the new token's jti), allowed or refused with the
 * reason. Never a token. The exchange's answer waits for the event to be durable.
 */
export function withTokenExchangeEvents(inner: TokenExchange, events: EventSink): TokenExchange {
  return {
    async exchange(request) {
      let result
      try {
        result = await inner.exchange(request)
      } catch (err) {
        await events
          .append({
            type: 'token.exchange',
            action: 'exchange',
            decision: 'deny',
            data: {
              ...(request.audience ? { audience: request.audience } : {}),
              ...(request.scope ? { scope: request.scope } : {}),
              ...(request.subject_token_type
                ? { subjectTokenType: request.subject_token_type }
                : {}),
              error: isTesseraError(err) ? err.code : 'internal',
              reason: isTesseraError(err) ? err.message : 'internal error',
            },
          })
          .catch(() => {})
        throw err
      }
      await events.append({
        type: 'token.exchange',
        actor: result.actor?.spiffeId ?? result.subject.spiffeId,
        subject: result.svid.spiffeId,
        ...(request.audience ? { resource: request.audience } : {}),
        action: 'exchange',
        decision: 'allow',
        data: {
          jti: result.svid.jti,
          via: result.subject.via,
          chain: result.chain,
          ...(result.response.scope ? { scope: result.response.scope } : {}),
          ...(result.intent ? { intent: result.intent } : {}),
          expiresAt: result.svid.expiresAt,
        },
      })
      return result
    },
  }
}
