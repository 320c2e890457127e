/** Hash routing: `#/inbox`, `#/approve/<workflowId>/<stepPath>`, `#/plans/<id>/history`, `#/grants`, `#/settings`, `#/pair?code=…`. */

export type Route =
  | { name: 'inbox' }
  | { name: 'approve'; workflowId: string; stepPath: string }
  | { name: 'plans' }
  | { name: 'plan'; workflowId: string }
  | { name: 'history'; workflowId: string }
  | { name: 'devices' }
  | { name: 'grants' }
  | { name: 'settings' }
  | { name: 'pair'; code: string }
  | { name: 'join'; invite: string }
  | { name: 'not-found'; path: string };

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/inbox';
  const [pathPart = '', queryPart = ''] = raw.split('?', 2);
  const query = new URLSearchParams(queryPart);
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  const [head, id, ...rest] = parts;
  switch (head) {
    case undefined:
    case 'inbox':
      return { name: 'inbox' };
    case 'approve':
      if (id && rest.length > 0) return { name: 'approve', workflowId: id, stepPath: rest.join('/') };
      break;
    case 'plans':
      if (!id) return { name: 'plans' };
      if (rest.length === 0) return { name: 'plan', workflowId: id };
      if (rest.length === 1 && rest[0] === 'history') return { name: 'history', workflowId: id };
      break;
    case 'devices':
      return { name: 'devices' };
    case 'grants':
      return { name: 'grants' };
    case 'settings':
      return { name: 'settings' };
    case 'pair':
      return { name: 'pair', code: query.get('code') ?? '' };
    case 'join':
      return { name: 'join', invite: query.get('invite') ?? '' };
  }
  return { name: 'not-found', path: pathPart };
}

/** The hash for a route, each segment encoded (step paths keep their slashes). */
export function href(route: Route): string {
  const enc = encodeURIComponent;
  switch (route.name) {
    case 'inbox':
      return '#/inbox';
    case 'approve':
      return `#/approve/${enc(route.workflowId)}/${route.stepPath.split('/').map(enc).join('/')}`;
    case 'plans':
      return '#/plans';
    case 'plan':
      return `#/plans/${enc(route.workflowId)}`;
    case 'history':
      return `#/plans/${enc(route.workflowId)}/history`;
    case 'devices':
      return '#/devices';
    case 'grants':
      return '#/grants';
    case 'settings':
      return '#/settings';
    case 'pair':
      return route.code ? `#/pair?code=${enc(route.code)}` : '#/pair';
    case 'join':
      return route.invite ? `#/join?invite=${enc(route.invite)}` : '#/join';
    case 'not-found':
      return `#${route.path}`;
  }
}

export class Router {
  route = $state<Route>(parseHash(location.hash));

  constructor() {
    window.addEventListener('hashchange', () => {
      this.route = parseHash(location.hash);
      window.scrollTo(0, 0);
    });
  }

  go(route: Route, replace = false): void {
    const target = href(route);
    if (replace) {
      history.replaceState(null, '', target);
      this.route = parseHash(target);
    } else {
      location.hash = target;
    }
  }
}

export const router = new Router();
