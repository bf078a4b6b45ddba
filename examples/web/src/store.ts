// The page's copy of the user's lists and tasks, filled only from the changes feed
// (GET /api/{user_id}/changes): the first pull loads everything (following `cursor` while
// `has_more`), every later pull applies what changed since the last cursor. Writes never
// touch the store directly: the page writes through the API, pulls, and draws the store.
// So every open tab converges on what the server has, whoever made the change.
import { describeError, type Change, type Task, type TaskList, type TasksClient } from "./api.js";

export class SyncError extends Error {}

/** Siblings (tasks of one parent, or lists) in their order: position byte by byte, then id. */
export function byPosition(a: { position: string; id: number }, b: { position: string; id: number }): number {
  if (a.position !== b.position) return a.position < b.position ? -1 : 1;
  return a.id - b.id;
}

export class Store {
  readonly lists = new Map<number, TaskList>();
  readonly tasks = new Map<number, Task>();
  private readonly etags = new Map<string, string>(); // "task 42" → its ETag: what we hold
  private cursor: string | undefined; // undefined: nothing loaded yet

  constructor(
    private readonly api: TasksClient,
    readonly userId: string,
  ) {}

  /** Apply what changed since the last pull (everything, the first time). True if the
   * store changed: an item that comes again (the feed may repeat one) changes nothing, and
   * the page is not drawn again for it. */
  async pull(): Promise<boolean> {
    let changed = false;
    let restarted = false;
    for (;;) {
      const { data, error, response } = await this.api.GET("/api/{user_id}/changes", {
        params: { path: { user_id: this.userId }, query: this.cursor === undefined ? {} : { cursor: this.cursor } },
      });
      if (response.status === 410 && !restarted) {
        // The cursor is older than the deletions the service remembers: drop the copy, load again.
        this.lists.clear();
        this.tasks.clear();
        this.etags.clear();
        this.cursor = undefined;
        restarted = changed = true;
        continue;
      }
      if (data === undefined) throw new SyncError(`Could not sync: ${describeError(error, response)}`);
      for (const item of data.changes) changed = this.apply(item) || changed;
      this.cursor = data.cursor; // the new one even when nothing changed: it stays valid longer
      if (!data.has_more) return changed;
    }
  }

  /** Upsert or remove one item; true if that changed what the store holds. */
  private apply(item: Change): boolean {
    const key = `${item.type} ${item.id}`;
    if (item.deleted) {
      if (!this.etags.delete(key)) return false;
    } else {
      if (this.etags.get(key) === item.etag) return false;
      this.etags.set(key, item.etag);
    }
    // Narrowed by `type`, then by `deleted`: only an upsert carries `data`.
    if (item.type === "task") {
      if (item.deleted) this.tasks.delete(item.id);
      else this.tasks.set(item.id, item.data);
    } else if (item.deleted) {
      this.lists.delete(item.id);
    } else {
      this.lists.set(item.id, item.data);
    }
    return true;
  }

  /** The lists in their order. */
  orderedLists(): TaskList[] {
    return [...this.lists.values()].sort(byPosition);
  }

  defaultList(): TaskList | undefined {
    return [...this.lists.values()].find((list) => list.is_default);
  }

  /** A list's tasks grouped by parent (null: the top level), each group in manual order. */
  tree(listId: number): Map<number | null, Task[]> {
    const children = new Map<number | null, Task[]>();
    for (const task of this.tasks.values()) {
      if (task.list_id !== listId) continue;
      const siblings = children.get(task.parent_id);
      if (siblings === undefined) children.set(task.parent_id, [task]);
      else siblings.push(task);
    }
    for (const siblings of children.values()) siblings.sort(byPosition);
    return children;
  }
}
