/**
 * Multi-instance: three socket-base instances joined by Redis, the members of every room spread
 * over them, every member talking. Server CPU is the sum of the instances (Redis and PostgreSQL
 * themselves are not counted).
 */
import { Traffic } from './traffic.js';
import type { Scenario } from './types.js';

export const multiInstance: Scenario = {
  name: 'multiinstance',
  title: 'multi-instance',
  instances: (sizes) => sizes.clusterInstances,
  appliesTo: (server) => server.socketBase,
  run: (context) =>
    new Traffic(context, {
      projects: 1,
      roomsPerProject: context.sizes.clusterRooms,
      membersPerRoom: context.sizes.clusterMembers,
      senders: 'all',
      rates: context.sizes.clusterRates,
      refRate: context.sizes.clusterRefRate,
      halfStep: false,
    }).search(),
};
