/**
 * Resolves on the first SIGINT or SIGTERM, for foreground commands (`server`, `agent`); a second
 * signal exits at once (130).
 */
export function waitForSignal(): Promise<void> {
  return new Promise((resolveWait) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      process.once('SIGINT', () => process.exit(130))
      process.once('SIGTERM', () => process.exit(130))
      resolveWait()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}
