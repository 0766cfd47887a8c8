/** Fan-out: one room of 1,000 members, one of them publishing at stepped rates. */
import { Traffic } from './traffic.js';
import type { Scenario } from './types.js';

export const fanout: Scenario = {
  name: 'fanout',
  title: 'fan-out',
  instances: () => 1,
  appliesTo: () => true,
  run: (context) =>
    new Traffic(context, {
      projects: 1,
      roomsPerProject: 1,
      membersPerRoom: context.sizes.fanoutMembers,
      senders: 'one',
      rates: context.sizes.fanoutRates,
      refRate: context.sizes.fanoutRefRate,
      halfStep: false,
    }).search(),
};
