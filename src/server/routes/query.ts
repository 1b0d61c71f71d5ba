/** Query-string instants are validated as date-time by the route schema before they get here. */
export function optionalDate(value: string | undefined): Date | undefined {
  return value === undefined ? undefined : new Date(value)
}
