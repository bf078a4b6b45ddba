// The page: sign up / sign in with Better Auth, then list, add, edit, toggle and delete
// tasks through the typed client. Plain DOM, no framework.
import { describeError, createTasksClient, type Pagination, type StatusFilter, type Task } from "./api.js";
import { AuthError, BetterAuth, type User } from "./auth.js";
import { TokenKeeper } from "./token.js";

interface Config {
  authUrl: string; // Better Auth's base URL
  apiUrl: string; // the Tasks API's base URL
}

const config = (await (await fetch("/config.json")).json()) as Config;
const auth = new BetterAuth(config.authUrl);
const tokens = new TokenKeeper(() => auth.token());
const api = createTasksClient(config.apiUrl, tokens);

let user: User | null = null;
let shown = new Map<number, Task>(); // the tasks on screen, by id

// --------------------------------------------------------------------------- DOM helpers

function element<T extends Element>(selector: string, root: ParentNode = document): T {
  const found = root.querySelector<T>(selector);
  if (found === null) throw new Error(`missing element ${selector}`);
  return found;
}

function cloneTemplate<T extends Element>(id: string): T {
  const template = element<HTMLTemplateElement>(`#${id}`);
  const first = template.content.firstElementChild;
  if (first === null) throw new Error(`empty template #${id}`);
  return first.cloneNode(true) as T;
}

const statusLine = element<HTMLParagraphElement>("#status");
const list = element<HTMLUListElement>("#task-list");
const filter = element<HTMLSelectElement>("#filter");

function say(message: string, isError = false): void {
  statusLine.textContent = message;
  statusLine.classList.toggle("error", isError);
}

function field(form: HTMLFormElement, name: string): string {
  const value = new FormData(form).get(name);
  return typeof value === "string" ? value : "";
}

function idOf(target: Element): number {
  const item = target.closest<HTMLLIElement>("li.task");
  if (item?.dataset.id === undefined) throw new Error("not inside a task");
  return Number(item.dataset.id);
}

/** Run a user action; report failures on the status line, and sign out if the session ended. */
async function run(action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (error instanceof AuthError && error.status === 401) {
      showSignedOut();
      say("Your session has ended: sign in again.", true);
      return;
    }
    say(error instanceof Error ? error.message : String(error), true);
  }
}

// --------------------------------------------------------------------------- signed in / out

function showSignedOut(): void {
  user = null;
  tokens.clear();
  shown = new Map();
  list.replaceChildren();
  element("#signed-in").toggleAttribute("hidden", true);
  element("#who").toggleAttribute("hidden", true);
  element("#signed-out").toggleAttribute("hidden", false);
}

async function showSignedIn(): Promise<void> {
  const session = await auth.session();
  if (session === null) return showSignedOut();
  user = session.user;
  if (session.jwt !== null) tokens.set(session.jwt);
  else await tokens.refresh();
  element("#who-name").textContent = `${user.name} <${user.email}>`;
  element("#signed-out").toggleAttribute("hidden", true);
  element("#who").toggleAttribute("hidden", false);
  element("#signed-in").toggleAttribute("hidden", false);
  await loadTasks();
}

// --------------------------------------------------------------------------- tasks

function me(): string {
  if (user === null) throw new AuthError("Not signed in.", 401);
  return user.id;
}

async function loadTasks(): Promise<void> {
  const status = filter.value as StatusFilter; // the <select> offers exactly the API's values
  const { data, error, response } = await api.GET("/api/{user_id}/tasks", {
    params: { path: { user_id: me() }, query: { status, sort: "created", order: "asc", page_size: 100 } },
  });
  if (data === undefined) return say(`Could not load the tasks: ${describeError(error, response)}`, true);
  const header = response.headers.get("X-Pagination"); // readable: the API exposes it (CORS)
  const pagination = header === null ? null : (JSON.parse(header) as Pagination);
  render(data, pagination);
}

function render(tasks: Task[], pagination: Pagination | null): void {
  shown = new Map(tasks.map((task) => [Number(task.id), task]));
  list.replaceChildren(...tasks.map(renderTask));
  element("#empty").toggleAttribute("hidden", tasks.length > 0);
  const total = pagination?.total ?? tasks.length;
  element("#count").textContent =
    `${total} task${total === 1 ? "" : "s"}` + (total > tasks.length ? ` (first ${tasks.length} shown)` : "");
}

function renderTask(task: Task): HTMLLIElement {
  const item = cloneTemplate<HTMLLIElement>("task-item");
  item.dataset.id = String(task.id);
  item.classList.toggle("completed", task.completed);
  element<HTMLInputElement>(".toggle", item).checked = task.completed;
  element(".title", item).textContent = task.title;
  element(".description", item).textContent = task.description ?? "";
  return item;
}

async function addTask(form: HTMLFormElement): Promise<void> {
  const title = field(form, "title");
  const description = field(form, "description").trim();
  const { data, error, response } = await api.POST("/api/{user_id}/tasks", {
    params: { path: { user_id: me() } },
    body: { title, description: description === "" ? null : description, completed: false },
  });
  if (data === undefined) return say(`Not added: ${describeError(error, response)}`, true);
  form.reset();
  say(`Added “${data.title}”.`);
  await loadTasks();
}

async function setCompleted(id: number, completed: boolean): Promise<void> {
  // An explicit value rather than a bare toggle: a retried request cannot flip it back.
  const { data, error, response } = await api.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
    params: { path: { user_id: me(), task_id: id } },
    body: { completed },
  });
  if (data === undefined) say(`Not changed: ${describeError(error, response)}`, true);
  else say(`“${data.title}” ${data.completed ? "done" : "reopened"}.`);
  await loadTasks();
}

async function saveEdit(id: number, form: HTMLFormElement): Promise<void> {
  const description = field(form, "description").trim();
  const { data, error, response } = await api.PUT("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: me(), task_id: id } },
    body: { title: field(form, "title"), description: description === "" ? null : description },
  });
  if (data === undefined) return say(`Not saved: ${describeError(error, response)}`, true);
  say(`Saved “${data.title}”.`);
  await loadTasks();
}

async function deleteTask(id: number): Promise<void> {
  const title = shown.get(id)?.title ?? "the task";
  const { error, response } = await api.DELETE("/api/{user_id}/tasks/{task_id}", {
    params: { path: { user_id: me(), task_id: id } },
  });
  if (!response.ok) say(`Not deleted: ${describeError(error, response)}`, true);
  else say(`Deleted “${title}”.`);
  await loadTasks();
}

function openEditor(id: number, item: HTMLLIElement): void {
  const task = shown.get(id);
  if (task === undefined) return;
  const editor = cloneTemplate<HTMLFormElement>("task-editor");
  element<HTMLInputElement>("[name=title]", editor).value = task.title;
  element<HTMLInputElement>("[name=description]", editor).value = task.description ?? "";
  item.replaceChildren(editor);
  element<HTMLInputElement>("[name=title]", editor).focus();
}

// --------------------------------------------------------------------------- events

function onSubmit(selector: string, handler: (form: HTMLFormElement) => Promise<void>): void {
  const form = element<HTMLFormElement>(selector);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void run(() => handler(form));
  });
}

onSubmit("#sign-up-form", async (form) => {
  await auth.signUp(field(form, "name"), field(form, "email"), field(form, "password"));
  form.reset();
  say("");
  await showSignedIn();
});

onSubmit("#sign-in-form", async (form) => {
  await auth.signIn(field(form, "email"), field(form, "password"));
  form.reset();
  say("");
  await showSignedIn();
});

element("#sign-out").addEventListener("click", () => {
  void run(async () => {
    await auth.signOut();
    showSignedOut();
    say("Signed out.");
  });
});

onSubmit("#add-form", addTask);
filter.addEventListener("change", () => void run(loadTasks));

// One listener for every task, present and future (event delegation).
list.addEventListener("change", (event) => {
  const target = event.target as HTMLInputElement;
  if (target.classList.contains("toggle")) void run(() => setCompleted(idOf(target), target.checked));
});
list.addEventListener("click", (event) => {
  const target = event.target as HTMLElement;
  const item = target.closest<HTMLLIElement>("li.task");
  if (item === null) return;
  if (target.classList.contains("delete")) void run(() => deleteTask(idOf(target)));
  else if (target.classList.contains("edit")) openEditor(idOf(target), item);
  else if (target.classList.contains("cancel")) void run(loadTasks);
});
list.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target as HTMLFormElement;
  void run(() => saveEdit(idOf(form), form));
});

await run(async () => {
  try {
    await showSignedIn();
  } catch (error) {
    showSignedOut(); // Better Auth unreachable, say: show the forms and the reason
    throw error;
  }
});
