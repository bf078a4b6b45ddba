// Better Auth from the browser: its REST endpoints, with the session cookie it sets on its
// own origin (hence `credentials: "include"`, and CORS with credentials on the auth server).
// With the better-auth client library the same calls are authClient.signUp.email(...),
// authClient.signIn.email(...), authClient.getSession(), authClient.token() (jwtClient
// plugin) and authClient.signOut().

export interface User {
  id: string; // the Better Auth user id: the JWT's `sub`, and the API's {user_id}
  email: string;
  name: string;
}

export class AuthError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class BetterAuth {
  constructor(private readonly baseUrl: string) {}

  private async request(path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> {
    const response = await fetch(`${this.baseUrl}/api/auth${path}`, {
      method: init.method ?? "GET",
      credentials: "include",
      headers: init.body === undefined ? {} : { "Content-Type": "application/json" },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const body: unknown = await response.json();
        if (body && typeof body === "object" && "message" in body && typeof body.message === "string") {
          message = body.message;
        }
      } catch {
        // not JSON: keep the status line
      }
      throw new AuthError(message, response.status);
    }
    return response;
  }

  async signUp(name: string, email: string, password: string): Promise<void> {
    await this.request("/sign-up/email", { method: "POST", body: { name, email, password } });
  }

  async signIn(email: string, password: string): Promise<void> {
    await this.request("/sign-in/email", { method: "POST", body: { email, password } });
  }

  async signOut(): Promise<void> {
    await this.request("/sign-out", { method: "POST", body: {} });
  }

  /** The signed-in user and, from the jwt plugin's `set-auth-jwt` header, a JWT; null if signed out. */
  async session(): Promise<{ user: User; jwt: string | null } | null> {
    const response = await this.request("/get-session");
    const body = (await response.json()) as { user?: User } | null;
    if (!body?.user) return null;
    // Readable cross-origin only because the auth server lists it in Access-Control-Expose-Headers.
    return { user: body.user, jwt: response.headers.get("set-auth-jwt") };
  }

  /** A new JWT for the current session (GET /api/auth/token, from the jwt plugin). */
  async token(): Promise<string> {
    const body = (await (await this.request("/token")).json()) as { token?: unknown };
    if (typeof body.token !== "string") throw new AuthError("Better Auth returned no token", 502);
    return body.token;
  }
}
