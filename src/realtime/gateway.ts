/**
 * Admits a WebSocket client: authenticates it against its project, registers its session with the
 * hub, greets it. The transport calls `admit` and hands the socket's frames to what it returns.
 */
import { ERRORS } from '../errors.js';
import type { Projects } from '../tenancy/projects.js';
import type { Admission, Connection } from '../transport/connection.js';
import { Session, type SessionContext } from './session.js';

export interface GatewayEvents {
  onOpen(session: { id: string; project: string; user: string }, address: string): void;
  /** `project` when it is known (a project's own limit refused it). */
  onRefused(reason: string, address: string, project?: string): void;
}

export class Gateway {
  readonly #projects: Projects;
  readonly #context: SessionContext;
  readonly #events: GatewayEvents;

  constructor(projects: Projects, context: SessionContext, events: GatewayEvents) {
    this.#projects = projects;
    this.#context = context;
    this.#events = events;
  }

  readonly admit = async (
    connection: Connection,
    hash: string,
    token: string,
    address: string,
  ): Promise<Admission> => {
    // A connection's token is checked once (a refresh brings another): it is not kept.
    const auth = await this.#projects.authenticate(hash, token, false);
    if (!auth.ok) {
      const spec = ERRORS[auth.error];
      this.#events.onRefused(auth.error, address);
      return { ok: false, message: spec.message, code: spec.close };
    }
    // The project's own copy of its hash, shared by its sessions: the one decoded from this
    // socket's path would be a string per connection (or a slice that keeps the whole URL).
    const project = auth.project.hash;
    const { projectLimits } = this.#context;
    const counted = projectLimits.admit(project, auth.sub);
    const admission = typeof counted === 'string' ? counted : await counted;
    if (admission !== 'admitted') {
      const spec = ERRORS.tooManyConnections;
      this.#events.onRefused('tooManyConnections', address, project);
      return { ok: false, message: spec.message, code: spec.close };
    }
    const session = new Session(connection, project, auth.sub, this.#context, auth);
    session.counted();
    // The hub greets the session in the turn it joins the project's members, and leaves nothing
    // behind when it cannot (the transport then closes the socket with 1011).
    try {
      await this.#context.hub.add(session);
    } catch (error) {
      projectLimits.release(project, auth.sub);
      throw error;
    }
    this.#events.onOpen(session, address);
    return { ok: true, handler: session };
  };
}
