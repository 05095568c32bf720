// The serving table: what the gateway answers, per namespace. Each application publishes a slice
// (its functions and its static site); the namespace view is rebuilt and swapped as one object, so a
// request sees either the old revision or the new one, never a mix.
import { buildRoutes, matchRoute, type RouteMatch, type RouteTable } from '../core/routing.js';
import type { FunctionRuntimeKind, StaticFileEntry } from '../core/desired.js';
import type { DrainingFunction } from './drain.js';

export interface ServedFunction {
  appKey: string;
  path: string;
  /** `service`: a route of an apps/ service, proxied to its healthy process. */
  runtime: FunctionRuntimeKind | 'service';
  handle: DrainingFunction;
  timeoutMs: number;
}

export interface ServedStatic {
  appKey: string;
  files: ReadonlyMap<string, StaticFileEntry>;
}

export interface AppSlice {
  namespace: string;
  functions: ReadonlyMap<string, ServedFunction>;
  static: ServedStatic | null;
}

interface NamespaceView {
  functions: RouteTable<ServedFunction>;
  static: ServedStatic | null;
}

export class ServingTable {
  private readonly slices = new Map<string, AppSlice>();
  private readonly views = new Map<string, NamespaceView>();

  /** Publishes (or replaces) an application's slice. */
  setApp(appKey: string, slice: AppSlice): void {
    const previous = this.slices.get(appKey);
    this.slices.set(appKey, slice);
    this.rebuild(slice.namespace);
    if (previous && previous.namespace !== slice.namespace) this.rebuild(previous.namespace);
  }

  removeApp(appKey: string): void {
    const previous = this.slices.get(appKey);
    if (!previous) return;
    this.slices.delete(appKey);
    this.rebuild(previous.namespace);
  }

  getApp(appKey: string): AppSlice | undefined {
    return this.slices.get(appKey);
  }

  findFunction(namespace: string, path: string): RouteMatch<ServedFunction> | null {
    const view = this.views.get(namespace);
    return view ? matchRoute(view.functions, path) : null;
  }

  findStatic(namespace: string): ServedStatic | null {
    return this.views.get(namespace)?.static ?? null;
  }

  /** The application (other than `exceptAppKey`) that serves `path` in the namespace. */
  functionOwner(namespace: string, path: string, exceptAppKey: string): string | null {
    for (const [key, slice] of this.slices) {
      if (key !== exceptAppKey && slice.namespace === namespace && slice.functions.has(path)) return key;
    }
    return null;
  }

  staticOwner(namespace: string, exceptAppKey: string): string | null {
    for (const [key, slice] of this.slices) {
      if (key !== exceptAppKey && slice.namespace === namespace && slice.static) return key;
    }
    return null;
  }

  private rebuild(namespace: string): void {
    const fns: [string, ServedFunction][] = [];
    let site: ServedStatic | null = null;
    for (const slice of this.slices.values()) {
      if (slice.namespace !== namespace) continue;
      for (const [path, f] of slice.functions) fns.push([path, f]);
      if (slice.static) site = slice.static;
    }
    if (fns.length === 0 && !site) this.views.delete(namespace);
    else this.views.set(namespace, { functions: buildRoutes(fns), static: site });
  }
}
