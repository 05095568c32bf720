// Who may do what (PRODUCT.md §9), as pure decisions: a principal (the token behind a call), an
// action and a namespace in, allowed or not out. The HTTP edge asks; nothing here does I/O.

export type Role = 'admin' | 'deployer' | 'reader';

/** The token behind an API call, without its secret. */
export interface Principal {
  tokenId: string;
  /** The token's name: recorded in history as who did a write. */
  name: string;
  role: Role;
  /** Namespaces the token is limited to; null = every namespace. */
  namespaces: string[] | null;
  /** A deployer may deploy services from apps/ folders (host processes). */
  services: boolean;
}

/**
 * `read`: GET anything of a namespace. `write`: register, sync, delete, rollback, suspend, resume,
 * credentials of the namespace. `admin`: tokens, credentials of namespace '*', server-wide actions.
 */
export type Action = 'read' | 'write' | 'admin';

/** Whether the principal covers `namespace` at all ('*' is covered only by unscoped tokens). */
export function coversNamespace(p: Principal, namespace: string): boolean {
  if (p.role === 'admin' || p.namespaces === null) return true;
  return p.namespaces.includes(namespace);
}

export function allows(p: Principal, action: Action, namespace?: string): boolean {
  if (p.role === 'admin') return true;
  if (action === 'admin') return false;
  if (action === 'write' && p.role !== 'deployer') return false;
  if (namespace === undefined) return action === 'read';
  return coversNamespace(p, namespace);
}

/** Whether a registration by this principal may deploy services from apps/. */
export function mayDeployServices(p: Principal): boolean {
  return p.role === 'admin' || (p.role === 'deployer' && p.services);
}

/** The namespaces a listing is limited to (null = all). */
export function readableNamespaces(p: Principal): string[] | null {
  return p.role === 'admin' ? null : p.namespaces;
}
