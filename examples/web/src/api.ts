// The typed Tasks API client: openapi-fetch over the types openapi-typescript generated
// from the API's /openapi.json (schema.d.ts; run.sh regenerates it from the running API).
import createClient from "openapi-fetch";

import type { components, paths } from "./schema.js";
import type { TokenKeeper } from "./token.js";

export type Task = components["schemas"]["Task"];
export type ApiError = components["schemas"]["Error"];
export type Pagination = components["schemas"]["PaginationMetadata"];
type ListQuery = NonNullable<paths["/api/{user_id}/tasks"]["get"]["parameters"]["query"]>;
export type StatusFilter = NonNullable<ListQuery["status"]>; // "all" | "pending" | "completed"

export function createTasksClient(baseUrl: string, tokens: TokenKeeper) {
  /** Every call carries a fresh token; a 401 gets one new token and one retry. */
  async function fetchWithToken(request: Request): Promise<Response> {
    const retry = request.clone(); // a body can be read once: keep a copy for the retry
    request.headers.set("Authorization", `Bearer ${await tokens.get()}`);
    const response = await fetch(request);
    if (response.status !== 401) return response;
    // Refused: expired while the tab slept, or signed by a key the API has not seen yet.
    retry.headers.set("Authorization", `Bearer ${await tokens.refresh()}`);
    return fetch(retry);
  }
  return createClient<paths>({ baseUrl, fetch: fetchWithToken });
}

/** One line for the person using the page, from the API's error shape. */
export function describeError(error: ApiError | string | undefined, response: Response): string {
  if (error === undefined || typeof error === "string") return `${response.status} ${response.statusText}`;
  const fields = error.errors ? ` ${JSON.stringify(error.errors)}` : "";
  return `${error.message}${fields}`;
}
