import { createWriteStream } from 'node:fs'
import { hostname } from 'node:os'
import { Option, type Command } from 'commander'
import type { ChainedEvent, EventJson } from '../../audit/chain.js'
import type { EventFilter, EventQuery } from '../../audit/query.js'
import type { ChainVerification } from '../../audit/verify.js'
import { TesseraError } from '../../errors.js'
import type { Store } from '../../store/store.js'
import type { CommandContext } from '../context.js'
import { exitCodes } from '../exit-codes.js'
import { collect, intOption, oneOf } from '../options.js'
import type { RemoteHttp } from '../remote.js'
import { renderTable } from '../table.js'
import { parseTimeOption } from '../time.js'

/** The audit log as the CLI sees it, on a local store or through a server. */
export interface AuditAdmin {
  verify(): Promise<ChainVerification>
  query(query: EventQuery): Promise<{ items: EventJson[]; nextCursor?: string }>
}

export function localAuditAdmin(store: Pick<Store, 'db'>): AuditAdmin {
  return {
    async verify() {
      const { verifyChain } = await import('../../audit/verify.js')
      return verifyChain(store.db)
    },
    async query(query) {
      const [{ queryEvents }, { eventJson }] = await Promise.all([
        import('../../audit/query.js'),
        import('../../audit/chain.js'),
      ])
      const page = await queryEvents(store.db, query)
      return {
        items: page.items.map(eventJson),
        ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
      }
    },
  }
}

export function remoteAuditAdmin(http: RemoteHttp): AuditAdmin {
  return {
    verify: () => http.json<ChainVerification>('GET', '/v1/audit/verify'),
    query: (query) =>
      http.json('GET', '/v1/audit/events', {
        query: {
          subject: query.subject,
          actor: query.actor,
          resource: query.resource,
          action: query.action,
          type: query.type,
          decision: query.decision,
          from: query.from?.toISOString(),
          to: query.to?.toISOString(),
          order: query.order,
          limit: query.limit === undefined ? undefined : String(query.limit),
          cursor: query.cursor,
        },
      }),
  }
}

interface FilterOptions {
  identity?: string
  subject?: string
  actor?: string
  resource?: string
  action?: string
  type?: string
  decision?: string
  from?: string
  to?: string
}

function addFilterOptions(cmd: Command): Command {
  return cmd
    .option('--identity <id>', 'events about this identity (SPIFFE ID or identity ref)')
    .option('--subject <id>', 'the same as --identity')
    .option('--actor <who>', 'events done by this actor (api-token:ID, agent:ID, a SPIFFE ID)')
    .option('--resource <r>', 'events on this resource')
    .option('--action <a>', 'events with this action')
    .option('--type <type>', 'an event type (entry.created) or a prefix (entry.*)')
    .option('--decision <d>', 'allow or deny')
    .option('--from <time>', 'from this instant (ISO 8601) or this long ago (24h), inclusive')
    .option('--to <time>', 'up to this instant or this long ago, exclusive')
}

function filterFrom(opts: FilterOptions, ctx: CommandContext): EventFilter {
  if (opts.identity !== undefined && opts.subject !== undefined && opts.identity !== opts.subject) {
    throw new TesseraError(
      'TSR_VALIDATION',
      '--identity and --subject name the same field: give one',
    )
  }
  const subject = opts.identity ?? opts.subject
  const now = ctx.io.clock.now()
  const time = (text: string | undefined, option: string) =>
    text === undefined ? undefined : parseTimeOption(text, { option, now, direction: 'past' })
  const from = time(opts.from, '--from')
  const to = time(opts.to, '--to')
  return {
    ...(subject !== undefined ? { subject } : {}),
    ...(opts.actor !== undefined ? { actor: opts.actor } : {}),
    ...(opts.resource !== undefined ? { resource: opts.resource } : {}),
    ...(opts.action !== undefined ? { action: opts.action } : {}),
    ...(opts.type !== undefined ? { type: opts.type } : {}),
    ...(opts.decision !== undefined ? { decision: opts.decision } : {}),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
  }
}

const columns = [
  { header: 'SEQ', value: (e: EventJson) => String(e.seq) },
  { header: 'AT', value: (e: EventJson) => e.at },
  { header: 'TYPE', value: (e: EventJson) => e.type },
  { header: 'ACTOR', value: (e: EventJson) => e.actor ?? '', maxWidth: 40 },
  { header: 'SUBJECT', value: (e: EventJson) => e.subject ?? '', maxWidth: 50 },
  { header: 'RESOURCE', value: (e: EventJson) => e.resource ?? '', maxWidth: 30 },
  { header: 'ACTION', value: (e: EventJson) => e.action ?? '', maxWidth: 30 },
  { header: 'DECISION', value: (e: EventJson) => e.decision ?? '' },
]

function fromJson(e: EventJson): ChainedEvent {
  return {
    seq: e.seq,
    at: new Date(e.at),
    type: e.type,
    ...(e.actor === null ? {} : { actor: e.actor }),
    ...(e.subject === null ? {} : { subject: e.subject }),
    ...(e.resource === null ? {} : { resource: e.resource }),
    ...(e.action === null ? {} : { action: e.action }),
    ...(e.decision === null ? {} : { decision: e.decision }),
    ...(e.requestId === null ? {} : { requestId: e.requestId }),
    data: e.data,
    prevHash: e.prevHash,
    hash: e.hash,
  }
}

/** `tessera audit verify | query | export`. */
export function registerAuditCommands(program: Command, ctx: CommandContext): void {
  const audit = program
    .command('audit')
    .description('the hash-chained audit log: verify it, query it, export it to a SIEM')

  audit
    .command('verify')
    .description(
      'walk the hash chain; exit 1 and say where if an event was edited, removed or moved',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const g = ctx.globals(cmd)
      await ctx.withBackend(cmd, async (backend) => {
        const result = await need(backend.audit).verify()
        if (!result.ok) ctx.setExitCode(exitCodes.findings)
        if (g.json) return ctx.out(JSON.stringify(result) + '\n')
        if (result.ok) {
          return ctx.out(
            `audit chain intact: ${result.checked} events` +
              (result.last ? `, last seq ${result.last.seq} hash ${result.last.hash}` : '') +
              '\n',
          )
        }
        let text = `audit chain BROKEN: ${result.issues.length} problem(s) in ${result.checked} events\n`
        for (const issue of result.issues) {
          text += `  ${issue.kind.padEnd(9)} seq ${issue.seq}${issue.at ? ` at ${issue.at}` : ''}: ${issue.message}\n`
        }
        return ctx.out(text)
      })
    })

  addFilterOptions(
    audit
      .command('query')
      .description('events matching the filters, newest first')
      .option('--limit <n>', 'at most this many (1..1000)', intOption(1, 1000), 100)
      .addOption(
        new Option('--order <order>', 'newest first (desc) or oldest first (asc)')
          .argParser(oneOf(['asc', 'desc'] as const))
          .default('desc'),
      )
      .option('--cursor <c>', 'the next page (from a previous --json answer)'),
  ).action(
    async (
      opts: FilterOptions & { limit: number; order: 'asc' | 'desc'; cursor?: string },
      cmd: Command,
    ) => {
      const g = ctx.globals(cmd)
      const filter = filterFrom(opts, ctx)
      await ctx.withBackend(cmd, async (backend) => {
        const page = await need(backend.audit).query({
          ...filter,
          limit: opts.limit,
          order: opts.order,
          ...(opts.cursor ? { cursor: opts.cursor } : {}),
        })
        if (g.json) return ctx.out(JSON.stringify(page) + '\n')
        if (page.items.length === 0) return ctx.out('no events match\n')
        await ctx.out(renderTable(columns, page.items))
        if (page.nextCursor) ctx.note(`more: --cursor ${page.nextCursor}`)
      })
    },
  )

  addFilterOptions(
    audit
      .command('export')
      .description(
        'every matching event, oldest first, as JSON Lines or RFC 5424 syslog, or to a webhook',
      )
      .addOption(
        new Option('--format <format>', 'jsonl or syslog')
          .argParser(oneOf(['jsonl', 'syslog'] as const))
          .default('jsonl'),
      )
      .option('--out <file>', 'write to this file instead of stdout')
      .option('--webhook <url>', "POST batches to a SIEM's HTTP collector instead")
      .option(
        '--webhook-header <header>',
        "a header for the webhook, 'Name: value' (repeatable)",
        collect,
      )
      .option('--hostname <name>', 'syslog HOSTNAME (default this host)')
      .option('--sd-id <id>', 'syslog SD-ID, name@enterprise-number (default tessera@32473)'),
  ).action(
    async (
      opts: FilterOptions & {
        format: 'jsonl' | 'syslog'
        out?: string
        webhook?: string
        webhookHeader?: string[]
        hostname?: string
        sdId?: string
      },
      cmd: Command,
    ) => {
      const g = ctx.globals(cmd)
      const filter = filterFrom(opts, ctx)
      if (opts.webhook !== undefined && opts.out !== undefined) {
        throw new TesseraError('TSR_VALIDATION', 'give --out or --webhook, not both')
      }
      if (
        (opts.sdId !== undefined && !/^[\x21-\x7e]{1,32}$/.test(opts.sdId)) ||
        /[= \]"]/.test(opts.sdId ?? '')
      ) {
        throw new TesseraError(
          'TSR_VALIDATION',
          '--sd-id: 1 to 32 printable characters without = ] " or space',
        )
      }
      const headers: Record<string, string> = {}
      for (const h of opts.webhookHeader ?? []) {
        const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(h)
        if (!m)
          throw new TesseraError(
            'TSR_VALIDATION',
            `--webhook-header: ${JSON.stringify(h.split(':')[0])} is not 'Name: value'`,
          )
        headers[m[1]!] = m[2]!
      }
      const { toJsonLine, toSyslog } = await import('../../audit/formats.js')
      await ctx.withBackend(cmd, async (backend) => {
        const admin = need(backend.audit)
        let count = 0
        if (opts.webhook !== undefined) {
          const { createWebhookSink } = await import('../../audit/webhook.js')
          let failed = 0
          const sink = createWebhookSink({
            url: opts.webhook,
            headers,
            ...(ctx.io.fetch ? { fetch: ctx.io.fetch } : {}),
            onError: (err, n) => {
              failed += n
              ctx.note(`error: ${err.message}`)
            },
          })
          for await (const e of pages(admin, filter)) {
            sink.observe([fromJson(e)])
            count++
          }
          await sink.flush()
          if (failed > 0) ctx.setExitCode(exitCodes.runtime)
          const summary = {
            exported: count - failed,
            failed,
            webhook: opts.webhook.replace(/\?.*$/, ''),
          }
          return g.json
            ? ctx.out(JSON.stringify(summary) + '\n')
            : ctx.note(
                `sent ${count - failed} event(s) to the webhook${failed ? `, ${failed} failed` : ''}`,
              )
        }
        const host = opts.hostname ?? hostname()
        const line = (e: EventJson) =>
          opts.format === 'jsonl'
            ? toJsonLine(fromJson(e))
            : toSyslog(fromJson(e), { hostname: host, ...(opts.sdId ? { sdId: opts.sdId } : {}) })
        if (opts.out !== undefined) {
          const file = createWriteStream(opts.out, { flags: 'wx', mode: 0o600 })
          await new Promise<void>((resolve, reject) => {
            file.once('open', () => resolve())
            file.once('error', (err) =>
              reject(
                new TesseraError(
                  'TSR_VALIDATION',
                  `--out: cannot create ${opts.out}: ${err.message}`,
                ),
              ),
            )
          })
          try {
            for await (const e of pages(admin, filter)) {
              if (!file.write(line(e)))
                await new Promise<void>((r) => file.once('drain', () => r()))
              count++
            }
          } finally {
            await new Promise<void>((r) => file.end(() => r()))
          }
          ctx.note(`exported ${count} event(s) to ${opts.out}`)
          return
        }
        for await (const e of pages(admin, filter)) {
          await ctx.out(line(e))
          count++
        }
      })
    },
  )
}

async function* pages(admin: AuditAdmin, filter: EventFilter): AsyncGenerator<EventJson> {
  let cursor: string | undefined
  for (;;) {
    const page = await admin.query({
      ...filter,
      order: 'asc',
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    })
    yield* page.items
    if (!page.nextCursor) return
    cursor = page.nextCursor
  }
}

function need(admin: AuditAdmin | undefined): AuditAdmin {
  if (!admin) throw new TesseraError('TSR_CONFIG', 'this backend has no audit log')
  return admin
}
