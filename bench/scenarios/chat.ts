/** Chat: 500 rooms of 2, everyone talking; latency is also quoted at half the sustained rate. */
import { Traffic } from './traffic.js';
import type { Scenario } from './types.js';

export const chat: Scenario = {
  name: 'chat',
  title: 'chat',
  instances: () => 1,
  appliesTo: () => true,
  run: (context) =>
    new Traffic(context, {
      projects: 1,
      roomsPerProject: context.sizes.chatRooms,
      membersPerRoom: 2,
      senders: 'all',
      rates: context.sizes.chatRates,
      refRate: context.sizes.chatRefRate,
      halfStep: true,
    }).search(),
};
