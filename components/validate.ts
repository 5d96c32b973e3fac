/** Shared argument checks for the components: each error names the component, the field and what is allowed. */

export class ArgsError extends Error {
  constructor(
    readonly component: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${component}: ${field} ${detail}`);
    this.name = "ArgsError";
  }
}

export function checkInt(component: string, field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new ArgsError(component, field, `must be an integer from ${min} to ${max} (got ${value})`);
}

const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** IPv4 CIDRs only; the whole internet (x/0) only where `allowWorld` says so. */
export function checkCidrs(component: string, field: string, cidrs: readonly string[], allowWorld = false): void {
  for (const c of cidrs) {
    const m = CIDR.exec(c);
    if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32)
      throw new ArgsError(component, field, `must hold IPv4 CIDRs such as "10.0.0.0/16" (got "${c}")`);
    if (Number(m[5]) === 0 && !allowWorld) throw new ArgsError(component, field, `must not admit the whole internet (got "${c}")`);
  }
}

const QUANTITY = /^([+]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;

export function checkQuantity(component: string, field: string, value: string): void {
  if (!QUANTITY.test(value)) throw new ArgsError(component, field, `must be a Kubernetes quantity such as "500m" or "1Gi" (got "${value}")`);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function checkDnsLabel(component: string, field: string, value: string, maxLength = 63): void {
  if (!DNS_LABEL.test(value) || value.length > maxLength)
    throw new ArgsError(component, field, `must be lower-case letters, digits and '-', at most ${maxLength} characters (got "${value}")`);
}
