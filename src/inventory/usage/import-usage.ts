import { TesseraError } from '../../errors.js'
import { parseCloudTrail } from './cloudtrail.js'
import { parseUsageJsonl } from './jsonl.js'
import { parseK8sAudit } from './k8s-audit.js'
import { usageFormats, type UsageFormat, type UsageParseResult } from './usage-record.js'

export interface ParseUsageOptions {
  format: UsageFormat
  /** Kubernetes cluster name for `k8s-audit` (default `default`). */
  cluster?: string
}

/** Parses a usage log of the given format; never throws on bad entries (they are `problems`). */
export function parseUsageLog(text: string, options: ParseUsageOptions): UsageParseResult {
  switch (options.format) {
    case 'cloudtrail':
      return parseCloudTrail(text)
    case 'k8s-audit': {
      const cluster = options.cluster ?? 'default'
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(cluster)) {
        throw new TesseraError('TSR_VALIDATION', 'cluster: letters, digits and . _ - (at most 63)')
      }
      return parseK8sAudit(text, { cluster })
    }
    case 'jsonl':
      return parseUsageJsonl(text)
    default:
      throw new TesseraError(
        'TSR_VALIDATION',
        `format must be one of ${usageFormats.join(', ')}, not ${JSON.stringify(options.format)}`,
      )
  }
}
