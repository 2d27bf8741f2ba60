/**
 * The stack `cdk synth` / `cdk deploy` make: one DriftLoop whose every prop is a CloudFormation
 * parameter with template.yaml's name, default and constraints (so the synthesized template takes
 * the same `--parameters` as the SAM template), template.yaml's logical IDs and its outputs.
 * tests/python/test_infra_cdk.py compares it with the SAM-transformed template.yaml.
 */
import { CfnOutput, CfnParameter, Fn, Stack, StackProps, Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { DriftLoop, DriftLoopProps, PARAMETERS } from './drift-loop';

export const DESCRIPTION = 'driftloop - the closed MLOps retraining loop around Amazon SageMaker: custom-metrics measures, '
  + 'a CloudWatch alarm decides, retrain-on-alarm starts the model-build pipeline, deploy-on-approval deploys what gets '
  + 'approved. Wiring through Amazon EventBridge (the DriftLoop CDK construct, infra/cdk/lib/drift-loop.ts).';

export interface DriftLoopStackProps extends StackProps {
  /** Passed to the construct besides the parameters (manifestPath, bundling). */
  readonly loop?: Partial<DriftLoopProps>;
}

export class DriftLoopStack extends Stack {
  public readonly loop: DriftLoop;

  constructor(scope: Construct, id: string, props: DriftLoopStackProps = {}) {
    super(scope, id, { description: DESCRIPTION, ...props });
    const values: Record<string, unknown> = {};
    for (const [name, def] of Object.entries(PARAMETERS)) {
      const param = new CfnParameter(this, name, {
        type: def.type, default: def.default, // Numbers stay numbers (as in template.yaml); CloudFormation takes either.
        allowedValues: def.allowedValues as string[] | undefined,
        allowedPattern: def.allowedPattern, minValue: def.minValue, maxValue: def.maxValue, description: def.description,
      });
      values[def.prop] = def.type === 'CommaDelimitedList' ? param.valueAsList
        : def.type === 'Number' ? param.valueAsNumber : param.valueAsString;
    }
    this.loop = new DriftLoop(this, 'Loop', { ...(values as unknown as DriftLoopProps), ...props.loop, samLogicalIds: true });

    // CDK's template validation resolves a Ref to the parameter's default even inside the branch
    // of an Fn::If that only runs when the parameter is set (MetricsNamespace, ProductionEndpointName
    // default to ""); cfn-lint, which is condition-aware, checks these properly.
    Validations.of(this).acknowledge({
      id: 'CloudFormation-Validate::W1030',
      reason: 'optional parameters are used only under their conditions (cfn-lint checks the template condition-aware)',
    });

    // template.yaml's outputs. (Outputs may share a parameter's name: CloudFormation keeps them
    // apart, constructs do not, hence their own scope.)
    const outputs = new Construct(this, 'Outputs');
    const l = this.loop;
    const c = l.conditions;
    const out = (name: string, value: string, o: { description?: string; condition?: string } = {}) =>
      new CfnOutput(outputs, name, { value, description: o.description, condition: o.condition ? c[o.condition] : undefined })
        .overrideLogicalId(name);
    const bucket = l.bucket.bucketName;
    out('DataBucketName', bucket, { description: 'Capture, ground truth (upload labels under GroundTruthPrefix/) and reports.' });
    out('CaptureS3Uri', `s3://${bucket}/${l.settings.CapturePrefix}`);
    out('GroundTruthS3Uri', `s3://${bucket}/${l.settings.GroundTruthPrefix}`);
    out('ReportS3Uri', `s3://${bucket}/${l.settings.ReportPrefix}`);
    out('ModelQualityAlarmName', l.modelQualityAlarm.alarmName, { condition: 'HasProblemType' });
    l.driftAlarms.forEach((a, i) => out(`DriftAlarm${i + 1}Name`, a.alarmName, {
      condition: `HasDriftAlarm${i + 1}`, description: `The drift alarm of the feature number ${i + 1} of DriftAlarmFeatures.`,
    }));
    out('DashboardUrl', `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards:name=${l.dashboard.dashboardName}`);
    out('GetApprovedModelFunctionArn', l.functions.getApprovedModel.functionArn);
    out('DeployOnApprovalFunctionArn', l.functions.deployOnApproval.functionArn);
    out('RetrainOnAlarmFunctionArn', l.functions.retrainOnAlarm.functionArn);
    out('CustomMetricsFunctionArn', l.functions.customMetrics.functionArn);
    out('CustomMetricsStagingFunctionArn', l.functions.customMetricsStaging.functionArn, { condition: 'MonitorsStagingToo' });
    out('ControlBusName', l.controlBus.eventBusName, { description: 'The bus the loop\'s requests go to (PutEvents from ControlPrincipals only).' });
    out('ControlBusArn', l.controlBus.eventBusArn);
    const q = l.deadLetterQueues;
    out('DeadLetterQueueUrls', Fn.join(' ', [q.deployOnApproval.queueUrl, q.retrainOnAlarm.queueUrl, q.customMetrics.queueUrl,
      q.getApprovedModel.queueUrl, q.notifications.queueUrl]), {
      description: 'Events that could not be delivered or whose invocations kept failing - the latter as Lambda\'s invocation record with errorType (inspect, then redrive).',
    });
    out('CustomMetricsStagingDLQUrl', q.customMetricsStaging.queueUrl, {
      condition: 'MonitorsStagingToo',
      description: 'The staging custom-metrics\' dead letters (failed invocations with their errorType, undeliverable events).',
    });
    out('NotificationTopicArn', l.topic.topicArn, {
      description: 'The notifications topic (loop outcomes and operational alarms; KMS-encrypted) - subscribe people or tools to it.',
    });
  }
}
