import { useEffect, useRef } from 'preact/hooks';
import type { AuditRecord, Held } from './api.js';

/**
 * The daemon's event stream (GET /ui/api/events, server-sent events), shared by every view: new
 * audit records, holds and releases of approvals, revoked sessions; `end` when the session is over.
 */
export type LiveEvent =
  | { type: 'audit'; records: AuditRecord[] }
  | { type: 'approval'; change: 'held' | 'released'; held: Held; result?: string }
  | { type: 'sessions' }
  | { type: 'reload' }
  | { type: 'status'; status: LiveStatus }
  | { type: 'end'; reason: string };

export type LiveStatus = 'connecting' | 'live' | 'offline';

type Listener = (ev: LiveEvent) => void;
const listeners = new Set<Listener>();
let source: EventSource | undefined;

function emit(ev: LiveEvent): void {
  for (const l of [...listeners]) l(ev);
}

function parse(e: MessageEvent<string>): unknown {
  try {
    return JSON.parse(e.data);
  } catch {
    return undefined;
  }
}

export function connectLive(): void {
  if (source) return;
  emit({ type: 'status', status: 'connecting' });
  const es = new EventSource('/ui/api/events');
  source = es;
  es.addEventListener('open', () => emit({ type: 'status', status: 'live' }));
  es.addEventListener('error', () => {
    // EventSource retries by itself after a dropped stream; a refused one (401) stays closed.
    emit({ type: 'status', status: es.readyState === EventSource.CLOSED ? 'offline' : 'connecting' });
  });
  es.addEventListener('audit', (e) => {
    const records = parse(e as MessageEvent<string>);
    if (Array.isArray(records)) emit({ type: 'audit', records: records as AuditRecord[] });
  });
  es.addEventListener('approval', (e) => {
    const d = parse(e as MessageEvent<string>) as { type: 'held' | 'released'; held: Held; result?: string };
    if (d?.held)
      emit({ type: 'approval', change: d.type, held: d.held, ...(d.result ? { result: d.result } : {}) });
  });
  es.addEventListener('sessions', () => emit({ type: 'sessions' }));
  es.addEventListener('reload', () => emit({ type: 'reload' }));
  es.addEventListener('end', (e) => {
    const d = parse(e as MessageEvent<string>) as { reason?: string } | undefined;
    es.close();
    source = undefined;
    emit({ type: 'status', status: 'offline' });
    emit({ type: 'end', reason: d?.reason ?? 'ended' });
  });
}

export function disconnectLive(): void {
  source?.close();
  source = undefined;
}

/** Calls `fn` for every live event while the component is mounted (the latest `fn`, no re-subscribe). */
export function useLive(fn: Listener): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    const l: Listener = (ev) => ref.current(ev);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
}

/** Runs `fn` at most once per `ms` however often it is asked (the last ask is never lost). */
export function throttle(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let last = 0;
  return () => {
    if (timer !== undefined) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(() => {
      timer = undefined;
      last = Date.now();
      fn();
    }, wait);
  };
}
