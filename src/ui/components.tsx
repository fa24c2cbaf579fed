import type { ComponentChildren } from 'preact';
import { ApiError } from './api.js';

/** A command the user can copy, e.g. "authsome login github". */
export function Cmd({ children }: { children: string }) {
  return <code class="cmd">{children}</code>;
}

/** What an empty list means, and what to run to fill it. */
export function Empty({ text, cmd }: { text: string; cmd?: string }) {
  return (
    <p class="empty">
      {text}
      {cmd !== undefined && (
        <>
          : <Cmd>{cmd}</Cmd>
        </>
      )}
    </p>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  const e = error instanceof ApiError ? error : undefined;
  return (
    <p class="error" role="alert">
      {e ? `${e.message} [${e.code}]` : 'The daemon could not be reached.'}
      {e?.hint !== undefined && <> Next: {e.hint}</>}
    </p>
  );
}

export function Section({
  title,
  id,
  actions,
  children,
}: {
  title: string;
  id: string;
  actions?: ComponentChildren;
  children: ComponentChildren;
}) {
  return (
    <section class="view" aria-labelledby={`${id}-title`}>
      <div class="view-head">
        <h2 id={`${id}-title`}>{title}</h2>
        {actions !== undefined && <div class="view-actions">{actions}</div>}
      </div>
      {children}
    </section>
  );
}

export function Time({ iso, text }: { iso: string | null | undefined; text: string }) {
  if (!iso) return <span>—</span>;
  return (
    <time dateTime={iso} title={iso}>
      {text}
    </time>
  );
}
