import { awsIamRotatorModule } from './rotators/aws-iam.js'
import { httpRotatorModule } from './rotators/http.js'
import { pgRotatorModule } from './rotators/pg.js'
import { redisRotatorModule } from './rotators/redis.js'
import type { Rotator, RotatorDeps, RotatorKind, RotatorModule } from './rotator.js'
import { rotatorKinds } from './rotator.js'
import { TesseraError } from '../../errors.js'

/** Every built-in rotator; a new kind fails to compile until it is registered here. */
export const rotatorModules = {
  pg: pgRotatorModule,
  redis: redisRotatorModule,
  http: httpRotatorModule,
  'aws-iam': awsIamRotatorModule,
} as const satisfies { [K in RotatorKind]: RotatorModule<unknown> | { kind: K } }

export function isRotatorKind(kind: string): kind is RotatorKind {
  return (rotatorKinds as readonly string[]).includes(kind)
}

function moduleOf(kind: string): RotatorModule<unknown> {
  if (!isRotatorKind(kind)) {
    throw new TesseraError(
      'TSR_VALIDATION',
      `unknown rotator ${kind} (one of ${rotatorKinds.join(', ')})`,
    )
  }
  return rotatorModules[kind] as unknown as RotatorModule<unknown>
}

/** Validates a rotator configuration; returns it normalised and its shareable (non-secret) part. */
export function checkRotatorConfig(
  kind: string,
  config: unknown,
): { config: Record<string, unknown>; publicConfig: Record<string, unknown> } {
  const m = moduleOf(kind)
  const parsed = m.parseConfig(config) as Record<string, unknown>
  const publicConfig: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(parsed)) {
    if (m.secretFields.includes(k)) publicConfig[k] = '[sealed]'
    else publicConfig[k] = v
  }
  return { config: parsed, publicConfig }
}

/** Builds a rotator from a stored (already validated) configuration. */
export function buildRotator(kind: string, config: unknown, deps: RotatorDeps): Rotator {
  const m = moduleOf(kind)
  return m.create(m.parseConfig(config), deps)
}
