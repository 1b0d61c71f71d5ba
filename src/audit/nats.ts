import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import type { Kysely } from 'kysely'
import { TesseraError } from '../errors.js'
import type { Database } from '../store/schema.js'
import { eventJson, type ChainedEvent, type EventJson } from './chain.js'
import type { EventObserver, StoredAuditEvent } from './event-sink.js'
import { streamEvents } from './query.js'

/**
 * Event transport across replicas (DESIGN §7 of issue 6). Every replica publishes each durable
 * event to one JetStream stream with `Nats-Msg-Id` = the event's seq: seq is unique in the shared
 * chain, so an event published twice (a retry, a replay after a restart, two replicas replaying
 * the same window) is stored once. Readers use a durable consumer per group with explicit acks, so
 * every group sees every replica's events, and within a group each event is handled once.
 */
export interface NatsTransportOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[]
  /** JetStream stream name (default TESSERA_EVENTS). */
  stream?: string
  /** Subjects are `<prefix>.<event type>` (default `tessera.events`). */
  subjectPrefix?: string
  /** JetStream duplicate window (default 2 min): republishing within it is harmless. */
  duplicateWindowMs?: number
  /** A connection name, shown by the NATS server (e.g. the replica's host). */
  name?: string
}

export interface NatsEventPublisher extends EventObserver {
  /**
   * Publishes the store's events from `since` again (after a restart, what may have been written
   * but not published); duplicates inside the window are dropped by JetStream.
   */
  replay(db: Kysely<Database>, since: Date): Promise<number>
  stats(): { published: number; duplicates: number; failed: number }
  close(): Promise<void>
}

const defaults = { stream: 'TESSERA_EVENTS', subjectPrefix: 'tessera.events', windowMs: 120_000 }
const namePattern = /^[A-Za-z0-9_-]{1,64}$/
const prefixPattern = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/

async function open(options: NatsTransportOptions): Promise<{
  nc: NatsConnection
  jsm: JetStreamManager
  js: JetStreamClient
  stream: string
  prefix: string
}> {
  const stream = options.stream ?? defaults.stream
  const prefix = options.subjectPrefix ?? defaults.subjectPrefix
  if (!namePattern.test(stream)) {
    throw new TesseraError('TSR_CONFIG', `NATS stream name ${JSON.stringify(stream)} is not valid`)
  }
  if (!prefixPattern.test(prefix)) {
    throw new TesseraError(
      'TSR_CONFIG',
      `NATS subject prefix ${JSON.stringify(prefix)} is not valid`,
    )
  }
  let nc: NatsConnection
  try {
    nc = await connect({
      servers: options.servers,
      ...(options.name ? { name: options.name } : {}),
      maxReconnectAttempts: -1,
    })
  } catch (err) {
    throw new TesseraError(
      'TSR_CONFIG',
      `cannot connect to NATS at ${String(options.servers)}: ${(err as Error).message}`,
      { cause: err },
    )
  }
  try {
    const jsm = await jetstreamManager(nc)
    const config = {
      name: stream,
      subjects: [`${prefix}.>`],
      duplicate_window: (options.duplicateWindowMs ?? defaults.windowMs) * 1_000_000,
      storage: StorageType.File,
    }
    try {
      await jsm.streams.info(stream)
    } catch {
      // Two replicas may create it at once: an identical config is accepted, so is "exists".
      await jsm.streams.add(config).catch(async (err: unknown) => {
        await jsm.streams.info(stream).catch(() => {
          throw err
        })
      })
    }
    return { nc, jsm, js: jetstream(nc), stream, prefix }
  } catch (err) {
    await nc.close()
    throw new TesseraError(
      'TSR_CONFIG',
      `NATS JetStream stream ${stream} is not available: ${(err as Error).message}`,
      { cause: err },
    )
  }
}

/** Connects, makes sure the stream exists, and returns an observer that publishes each batch. */
export async function createNatsEventPublisher(
  options: NatsTransportOptions & {
    onError?: (err: unknown) => void
    /** Publish attempts per event (default 5), with backoff from 100 ms. */
    attempts?: number
  },
): Promise<NatsEventPublisher> {
  const { nc, js, prefix } = await open(options)
  const attempts = options.attempts ?? 5
  const stats = { published: 0, duplicates: 0, failed: 0 }

  async function publishOne(e: StoredAuditEvent): Promise<void> {
    const payload = JSON.stringify(eventJson(e as ChainedEvent))
    for (let attempt = 1; ; attempt++) {
      try {
        const ack = await js.publish(`${prefix}.${e.type}`, payload, { msgID: String(e.seq) })
        if (ack.duplicate) stats.duplicates++
        else stats.published++
        return
      } catch (err) {
        if (attempt >= attempts) {
          stats.failed++
          options.onError?.(err)
          return
        }
        await new Promise((r) => setTimeout(r, 100 * 2 ** (attempt - 1)))
      }
    }
  }

  async function publish(events: readonly StoredAuditEvent[]): Promise<void> {
    // Many publishes in flight at once; JetStream orders them per subject as they arrive.
    const window = 256
    for (let i = 0; i < events.length; i += window) {
      await Promise.all(events.slice(i, i + window).map(publishOne))
    }
  }

  return {
    observe: publish,
    async replay(db, since) {
      let n = 0
      let batch: StoredAuditEvent[] = []
      for await (const e of streamEvents(db, { from: since })) {
        batch.push(e)
        if (batch.length >= 1000) {
          await publish(batch)
          n += batch.length
          batch = []
        }
      }
      await publish(batch)
      return n + batch.length
    },
    stats: () => ({ ...stats }),
    async close() {
      await nc.drain()
    },
  }
}

export interface NatsEventConsumer {
  /** Events handed to the observer so far. */
  readonly delivered: number
  stop(): Promise<void>
}

/**
 * Reads the stream as consumer group `group` (a durable JetStream consumer with explicit acks):
 * each event goes to `observer` and is acked after the observer resolves. Several processes may
 * run the same group; JetStream gives each message to one of them. A redelivery of an event this
 * process already handled (its ack was lost) is acked again without calling the observer.
 */
export async function startNatsEventConsumer(
  options: NatsTransportOptions & {
    group: string
    observer: EventObserver
    /** How long an unacked message waits before redelivery (default 30 s). */
    ackWaitMs?: number
    onError?: (err: unknown) => void
  },
): Promise<NatsEventConsumer> {
  if (!namePattern.test(options.group)) {
    throw new TesseraError(
      'TSR_CONFIG',
      `consumer group ${JSON.stringify(options.group)} is not valid`,
    )
  }
  const { nc, jsm, js, stream } = await open(options)
  await jsm.consumers
    .add(stream, {
      durable_name: options.group,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: (options.ackWaitMs ?? 30_000) * 1_000_000,
    })
    .catch(async (err: unknown) => {
      await jsm.consumers.info(stream, options.group).catch(() => {
        throw err
      })
    })
  const consumer = await js.consumers.get(stream, options.group)
  const messages = await consumer.consume({ max_messages: 1000 })
  const handled = new Set<number>()
  const state = { delivered: 0 }
  const loop = (async () => {
    for await (const m of messages) {
      let event: StoredAuditEvent
      try {
        event = fromJson(m.json<EventJson>())
      } catch (err) {
        options.onError?.(err)
        m.term()
        continue
      }
      if (handled.has(event.seq)) {
        m.ack()
        continue
      }
      try {
        await options.observer.observe([event])
      } catch (err) {
        options.onError?.(err)
        m.nak(1000)
        continue
      }
      handled.add(event.seq)
      if (handled.size > 100_000) handled.delete(handled.values().next().value!)
      state.delivered++
      m.ack()
    }
  })()
  return {
    get delivered() {
      return state.delivered
    },
    async stop() {
      messages.stop()
      await loop.catch(() => {})
      await nc.drain()
    },
  }
}

function fromJson(j: EventJson): ChainedEvent {
  if (typeof j?.seq !== 'number' || typeof j.type !== 'string' || typeof j.at !== 'string') {
    throw new TesseraError('TSR_VALIDATION', 'not a Tessera audit event')
  }
  return {
    seq: j.seq,
    at: new Date(j.at),
    type: j.type,
    ...(j.actor === null ? {} : { actor: j.actor }),
    ...(j.subject === null ? {} : { subject: j.subject }),
    ...(j.resource === null ? {} : { resource: j.resource }),
    ...(j.action === null ? {} : { action: j.action }),
    ...(j.decision === null ? {} : { decision: j.decision }),
    ...(j.requestId === null ? {} : { requestId: j.requestId }),
    data: j.data ?? {},
    prevHash: j.prevHash,
    hash: j.hash,
  }
}
