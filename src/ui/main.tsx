import { render } from 'preact';
import { ApiError, api, setCsrf } from './api.js';
import { App, LoggedOut } from './app.js';
import './style.css';

/**
 * Start-up. A link from `authsome ui` opens /ui/login#token=…: the token is in the fragment, which
 * the browser never sends anywhere. It is dropped from the address bar and the history entry at once
 * (replaceState), then exchanged for the session cookie by a same-origin POST.
 */
async function boot(root: HTMLElement): Promise<void> {
  if (location.pathname === '/ui/login') {
    const m = /^#token=([A-Za-z0-9_-]{43})$/.exec(location.hash);
    history.replaceState(null, '', '/ui/');
    if (!m) return render(<LoggedOut message="This link has no token." />, root);
    try {
      await api.login(m[1]!);
    } catch (e) {
      return render(
        <LoggedOut
          message={
            e instanceof ApiError ? `${e.message}.` : 'The daemon could not be reached: is it running?'
          }
        />,
        root,
      );
    }
  }
  try {
    const me = await api.me();
    setCsrf(me.csrf);
    render(<App me={me} />, root);
  } catch (e) {
    render(
      <LoggedOut
        message={
          e instanceof ApiError && e.status === 401
            ? 'You are not logged in to this dashboard.'
            : e instanceof ApiError
              ? `${e.message}.`
              : 'The daemon could not be reached: is it running?'
        }
      />,
      root,
    );
  }
}

void boot(document.getElementById('app')!);
