// Keeps a usable Better Auth JWT for the Tasks API.
//
// The jwt plugin's tokens last 15 minutes. The keeper refreshes ahead of expiry: a timer
// fires REFRESH_MARGIN_MS before the token runs out, and get() refreshes on the spot when
// that moment has passed anyway (timers are delayed in background tabs and on a sleeping
// laptop). The moment is measured on this machine's clock from when the token arrived,
// using its lifetime (exp - iat), so a wrong clock here does not matter. Concurrent
// callers share one refresh. The API client also calls refresh() once after a 401.

const REFRESH_MARGIN_MS = 60_000; // at most a quarter of the lifetime, for short-lived tokens

export class TokenKeeper {
  private token: string | null = null;
  private refreshAt = 0; // Date.now() value after which the token is renewed before use
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pending: Promise<string> | null = null;

  constructor(private readonly fetchToken: () => Promise<string>) {}

  set(token: string): void {
    const received = Date.now();
    const { iat, exp } = claims(token);
    const lifetimeMs = iat === undefined ? exp * 1000 - received : (exp - iat) * 1000;
    this.token = token;
    this.refreshAt = received + lifetimeMs - Math.min(REFRESH_MARGIN_MS, lifetimeMs / 4);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.refresh().catch(() => undefined); // the next get() tries again and reports
    }, Math.max(0, this.refreshAt - received));
  }

  /** The current token, renewed first if it is about to run out. */
  async get(): Promise<string> {
    if (this.token !== null && Date.now() < this.refreshAt) return this.token;
    return this.refresh();
  }

  /** A new token now (one request however many callers ask at once). */
  refresh(): Promise<string> {
    this.pending ??= this.fetchToken()
      .then((token) => {
        this.set(token);
        return token;
      })
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  clear(): void {
    clearTimeout(this.timer);
    this.token = null;
    this.refreshAt = 0;
  }
}

/** The token's iat and exp claims (not verified: the API verifies; the page only schedules). */
function claims(token: string): { iat?: number; exp: number } {
  const part = token.split(".")[1];
  if (part === undefined) throw new Error("not a JWT");
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  const payload = JSON.parse(json) as { iat?: unknown; exp?: unknown };
  if (typeof payload.exp !== "number") throw new Error("the JWT has no exp claim");
  return { iat: typeof payload.iat === "number" ? payload.iat : undefined, exp: payload.exp };
}
