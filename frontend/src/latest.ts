// The one out-of-order guard of the tab's loads: each load takes a ticket, and only the holder
// of the newest ticket may apply what it fetched (a slow answer to an older request is dropped).

/** True while no newer load has begun. */
export type Ticket = () => boolean;

export class Latest {
  private newest = 0;

  /** A new load begins: every ticket handed out before is stale from now on. */
  begin(): Ticket {
    const mine = ++this.newest;
    return () => mine === this.newest;
  }
}
