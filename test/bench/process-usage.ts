// CPU seconds and peak memory of a server over one benchmark run. A server is one process
// (mtrelay) or a master and its children (Postfix: master, smtpd, cleanup, qmgr, …).
import { childPids, cpuSeconds, peakRssKb, pssKb } from './proc-stats.ts';

export interface Usage {
  cpuSeconds: number;
  /** Sum of VmHWM of the server's processes alive at the end of the run, KiB. For a
   *  multi-process server this counts shared pages (libraries, text) once per process. */
  peakRssKb: number;
  /** Highest sampled sum of PSS (shared pages split between sharers), KiB. */
  peakPssKb: number;
  processes: number;
}

export class UsageMeter {
  readonly #root: number;
  readonly #withChildren: boolean;
  #startCpu = 0;
  #peakPss = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(root: number, withChildren: boolean) {
    this.#root = root;
    this.#withChildren = withChildren;
  }

  #pids(): number[] {
    return this.#withChildren ? [this.#root, ...childPids(this.#root)] : [this.#root];
  }

  /** The root's own time, plus (for a master) its live children and the children it reaped:
   *  a Postfix process that exits mid-run still counts, through the master's cutime/cstime. */
  #cpu(): number {
    if (!this.#withChildren) return cpuSeconds(this.#root);
    return this.#pids().reduce((sum, pid) => sum + cpuSeconds(pid, true), 0);
  }

  #sample(): void {
    const pss = this.#pids().reduce((sum, pid) => sum + pssKb(pid), 0);
    this.#peakPss = Math.max(this.#peakPss, pss);
  }

  start(): this {
    this.#startCpu = this.#cpu();
    this.#peakPss = 0;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 250);
    return this;
  }

  stop(): Usage {
    clearInterval(this.#timer);
    this.#sample();
    const pids = this.#pids();
    return {
      cpuSeconds: this.#cpu() - this.#startCpu,
      peakRssKb: pids.reduce((sum, pid) => sum + peakRssKb(pid), 0),
      peakPssKb: this.#peakPss,
      processes: pids.length,
    };
  }
}
