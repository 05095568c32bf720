// Function route matching (PRODUCT.md §4): exact path first, then the longest prefix on a `/` boundary.

export interface RouteTable<T> {
  readonly exact: ReadonlyMap<string, T>;
  /** Prefix routes, longest first. */
  readonly prefixes: readonly (readonly [string, T])[];
}

export interface RouteMatch<T> {
  route: string;
  value: T;
}

export function buildRoutes<T>(entries: Iterable<readonly [string, T]>): RouteTable<T> {
  const exact = new Map<string, T>();
  for (const [path, value] of entries) exact.set(path, value);
  const prefixes = [...exact.entries()].sort((a, b) => b[0].length - a[0].length);
  return { exact, prefixes };
}

export function matchRoute<T>(table: RouteTable<T>, path: string): RouteMatch<T> | null {
  const hit = table.exact.get(path);
  if (hit !== undefined) return { route: path, value: hit };
  for (const [route, value] of table.prefixes) {
    if (route === '/') return { route, value };
    if (path.startsWith(route) && path.charCodeAt(route.length) === 47 /* '/' */) return { route, value };
  }
  return null;
}

/** Splits `/ns/rest…` into the namespace and the path below it (`/` when nothing follows). */
export function splitNamespace(pathname: string): { namespace: string; path: string } | null {
  if (!pathname.startsWith('/')) return null;
  const slash = pathname.indexOf('/', 1);
  const namespace = slash === -1 ? pathname.slice(1) : pathname.slice(1, slash);
  if (!namespace) return null;
  return { namespace, path: slash === -1 ? '/' : pathname.slice(slash) };
}
