import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { TesseraError } from '../errors.js'
import { defaultDetectionConfig, type DetectionConfig } from './scoring.js'

/**
 * The detection config file (YAML or JSON, docs/detection.md):
 *
 * ```yaml
 * detection: { alertThreshold: 0.6, learningEvents: 200 }
 * responders:
 *   notify: { url: https://hooks.example.com/tessera, retries: 3 }
 *   revoke: { ttlSeconds: 86400 }
 * rules:
 *   - { name: page, minScore: 0.6, responders: [notify] }
 *   - { name: contain, minScore: 0.9, identities: ['spiffe://example.org/ns/prod/*'], responders: [revoke] }
 * cooldownSeconds: 900
 * ```
 */
export interface DetectionFile {
  detection: Partial<DetectionConfig>
  responders: unknown
  policy: { rules?: unknown; cooldownSeconds?: unknown }
}

export function parseDetectionFile(text: string, where = 'detection config'): DetectionFile {
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw new TesseraError('TSR_CONFIG', `${where}: not YAML or JSON: ${(err as Error).message}`)
  }
  if (doc === null || doc === undefined) doc = {}
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new TesseraError('TSR_CONFIG', `${where}: must be a map`)
  }
  const o = doc as Record<string, unknown>
  const problems: string[] = []
  for (const k of Object.keys(o)) {
    if (!['detection', 'responders', 'rules', 'cooldownSeconds'].includes(k)) {
      problems.push(`${k} is not a top-level field (detection, responders, rules, cooldownSeconds)`)
    }
  }
  const detection: Partial<DetectionConfig> = {}
  const d = o.detection
  if (d !== undefined) {
    if (typeof d !== 'object' || d === null) problems.push('detection must be a map')
    else {
      for (const [k, v] of Object.entries(d)) {
        if (!(k in defaultDetectionConfig)) problems.push(`detection.${k} is not a setting`)
        else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
          problems.push(`detection.${k} must be a non-negative number`)
        } else detection[k as keyof DetectionConfig] = v
      }
    }
  }
  if (detection.alertThreshold !== undefined && detection.alertThreshold > 1) {
    problems.push('detection.alertThreshold must be at most 1')
  }
  if (problems.length > 0) {
    throw new TesseraError('TSR_CONFIG', `${where}: ${problems.join('; ')}`, {
      details: { problems },
    })
  }
  return {
    detection,
    responders: o.responders,
    policy: { rules: o.rules, cooldownSeconds: o.cooldownSeconds },
  }
}

export function loadDetectionFile(path: string): DetectionFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new TesseraError('TSR_CONFIG', `cannot read ${path}: ${(err as Error).message}`)
  }
  return parseDetectionFile(text, path)
}
